"""The one training-config loader (reader.training.config) and every TOML file under configs/."""

from pathlib import Path

import pytest

pytest.importorskip("torch")

from reader.training.acoustic.aligner_finetune import FinetuneConfig  # noqa: E402
from reader.training.acoustic.phone_recognizer import RecognizerConfig  # noqa: E402
from reader.training.acoustic.postnet import Config as PostnetConfig  # noqa: E402
from reader.training.acoustic.train import Config as AcousticConfig  # noqa: E402
from reader.training.config import config_from_dict, load_config  # noqa: E402
from reader.training.vocoder.train import Config as VocoderConfig  # noqa: E402

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SCHEMA_BY_PREFIX = {
    "acoustic_": AcousticConfig, "vocoder": VocoderConfig, "postnet": PostnetConfig,
    "aligner_finetune": FinetuneConfig, "phone_recognizer": RecognizerConfig,
}  # fmt: skip


def schema_of(path: Path):
    return next(schema for prefix, schema in SCHEMA_BY_PREFIX.items() if path.stem.startswith(prefix))


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_into_its_schema(path):
    config = load_config(path, schema_of(path))
    assert type(config) is schema_of(path)


def test_tables_become_nested_dataclasses_and_missing_ones_take_their_defaults():
    config = config_from_dict(AcousticConfig, {"train": {"steps": 7, "loss_weights": {"mel": 2.0}}})
    assert config.train.steps == 7 and config.train.loss_weights.mel == 2.0 and config.train.loss_weights.duration == 1.0
    assert config.model == type(config.model)() and config.data == type(config.data)()


def test_an_unknown_setting_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown TrainConfig settings: \['stpes'\]"):
        config_from_dict(VocoderConfig, {"train": {"stpes": 3}})
    with pytest.raises(ValueError, match=r"unknown Config settings: \['trian'\]"):
        config_from_dict(PostnetConfig, {"trian": {}})
    with pytest.raises(ValueError, match="unknown FinetuneConfig settings"):
        config_from_dict(FinetuneConfig, {"augment_propability": 0.5})


def test_the_two_clip_runs_share_their_clip_settings_with_their_own_defaults():
    assert FinetuneConfig().augment_probability == 0.0 and RecognizerConfig().augment_probability == 0.6
    assert FinetuneConfig().max_frames_per_batch == 4000 and RecognizerConfig().max_frames_per_batch == 6000
    assert RecognizerConfig().data_config().max_frames_per_utterance == 1100
