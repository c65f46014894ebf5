import pytest

from reader.analysis import Analyzer


@pytest.fixture(scope="session")
def analyzer():
    """One real analyzer (spaCy, CMUdict, G2P ONNX, break model) shared by the whole test run."""
    return Analyzer()
