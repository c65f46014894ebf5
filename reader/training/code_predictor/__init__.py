"""Training of the linguistic prosody-code predictor (reader.prosody_prediction)."""
