"""Prosody transfer (reader.transfer) with the shipped models on real held-out recordings."""

import asyncio
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import soxr

from reader.engine import Reader
from reader.errors import ReaderError
from reader.paths import data_dir
from reader.model_inputs import token_inputs
from reader.transfer import SOURCE_PAUSE_LEVEL, SQUEEZED_PHONEME_FACTOR, in_target_register, transcript_tokens, with_source_pauses, without_squeezed_phonemes
from reader.transfer_source import (
    MAX_SOURCE_SECONDS,
    NARROW_BAND_DB,
    OCTAVE_JUMP,
    SPEECH_LEAD_SECONDS,
    SPEECH_TAIL_SECONDS,
    SourceRecording,
    frame_f0,
    load_source,
    praat_f0,
    speech_only,
    upper_band_db,
    without_octave_jumps,
)
from reader_runtime.features import FeatureSettings, f0_on_frame_grid

# Held-out test clips (never trained on): an LJ sentence and a kathleen sentence with a comma.
LJ_CLIP = ("ljspeech_longform", "LJ002-0155", "LJ", "for which the costs were six shillings ten pence.")
KATHLEEN_CLIP = ("kathleen_arctic", "arctic_b0499", "kathleen", "I said, and dismissed the matter as not worth thinking about.")
HOP_SECONDS = 256 / 22050


def clip_path(clip) -> str:
    return str(data_dir() / clip[0] / "wavs" / f"{clip[1]}.flac")


def seconds(path) -> float:
    return soundfile.info(path).duration


@pytest.fixture(scope="module")
def reader():
    return Reader(voice="LJ", prosody="centroid", threads=1)


@pytest.fixture(scope="module")
def transfer(reader):
    return reader.prosody_transfer()


@pytest.mark.parametrize("clip, target", [(LJ_CLIP, "kathleen"), (KATHLEEN_CLIP, "LJ")], ids=["LJ->kathleen", "kathleen->LJ"])
def test_transfer_between_the_real_speakers_in_both_directions(reader, transfer, clip, target):
    audio = reader.transfer(clip_path(clip), clip[3], voice=target, source_voice=clip[2])
    assert audio.sample_rate == 22050 and np.all(np.isfinite(audio.samples))
    speech = transfer.read_source(clip_path(clip), clip[3])[0]
    assert abs(audio.seconds - speech.samples.size / 22050) < 2 * HOP_SECONDS  # the source's speech frames, token by token
    assert speech.samples.size / 22050 > seconds(clip_path(clip)) - 0.5  # the clips start and end within a few tenths of their speech
    assert np.sqrt(np.mean(audio.samples**2)) > 0.01
    assert len(audio.words) == len(clip[3].split())
    # in the target's voice: decoding the same plan in the source's own voice gives another spectrum
    prosody = transfer.analyse_source(clip_path(clip), clip[3], source_voice=clip[2])
    in_target = transfer.decode(transfer.plan(prosody, target, mode="codes"))
    in_source = transfer.decode(transfer.plan(prosody, clip[2], mode="codes"))
    assert np.array_equal(in_target.durations, prosody.durations) and np.array_equal(in_source.durations, prosody.durations)
    assert np.mean(np.abs(in_target.mel - in_source.mel)) > 0.1
    # the codes alone carry the source's melody: the target's vowel pitch follows the source's far more
    # closely than the text-predicted pitch does on the same durations
    vowels = prosody.inputs.stress_ids > 0
    from_text = transfer.acoustic.synthesize(token_inputs(prosody.inputs), transfer.speaker(target), duration_override=prosody.durations.astype(np.float32))

    def follows_source(f0):
        return np.corrcoef(np.log(f0[vowels]), prosody.log_f0[vowels])[0, 1]

    assert follows_source(in_target.f0) > max(0.8, follows_source(from_text.f0) + 0.1)


def test_an_unnamed_source_speaker_is_taken_as_the_nearest_known_voice(transfer):
    for clip in (LJ_CLIP, KATHLEEN_CLIP):
        prosody = transfer.analyse_source(clip_path(clip), clip[3])
        assert prosody.source_speaker.name == clip[2] and prosody.source_speaker_chosen
    assert "nearest known voice" in transfer.plan(prosody, "LJ").notes()[0]


def test_streamed_transfer_is_phrase_by_phrase_and_equals_the_whole_decode(reader, transfer):
    plan = transfer.plan(transfer.analyse_source(clip_path(KATHLEEN_CLIP), KATHLEEN_CLIP[3], source_voice="kathleen"), "LJ")

    async def collect():
        return [chunk async for chunk in reader.stream_requests([plan.request()])]

    chunks = asyncio.run(collect())
    assert len(chunks) >= 2  # cut at the comma's phrase break
    whole = reader.vocoder.synthesize(transfer.decode(plan).mel)
    assert np.allclose(np.concatenate([c.samples for c in chunks]), whole, atol=1e-4)


def test_another_sample_rate_is_resampled_and_aligns_like_the_original(tmp_path, transfer):
    audio, rate = soundfile.read(clip_path(LJ_CLIP), dtype="float32")
    resampled = tmp_path / "source_16k.wav"
    soundfile.write(resampled, soxr.resample(audio, rate, 16000), 16000)
    recording = load_source(resampled, 22050)
    assert recording.sample_rate == 22050 and recording.original_sample_rate == 16000
    assert abs(recording.samples.size - audio.size) < 3
    original = transfer.analyse_source(clip_path(LJ_CLIP), LJ_CLIP[3], source_voice="LJ")
    from_16k = transfer.analyse_source(resampled, LJ_CLIP[3], source_voice="LJ")
    assert abs(int(from_16k.durations.sum()) - int(original.durations.sum())) <= 1
    assert np.mean(np.abs(from_16k.durations - original.durations)) < 1.0  # frames per token


def test_speech_only_keeps_the_margins_around_the_heard_frames():
    recording = SourceRecording(np.arange(22050 * 2, dtype=np.float32), 22050, "x.wav", 22050)
    cut = speech_only(recording, (100, 120), 256)
    assert cut.samples[0] == 100 * 256 - round(SPEECH_LEAD_SECONDS * 22050)
    assert cut.samples[-1] == 120 * 256 + round(SPEECH_TAIL_SECONDS * 22050) - 1
    assert speech_only(recording, (0, 172), 256).samples.size == recording.samples.size  # never past the ends


def test_room_tone_and_a_click_before_and_after_the_speech_are_not_taken_as_its_timing(tmp_path, transfer):
    """Half a second of room tone with a click at either end of a held-out clip: the aligner would hold
    the first and last phonemes through them (it never heard a long lead-in); the source is cut to the
    speech the recogniser hears, so the timing is the clip's own."""
    audio, rate = soundfile.read(clip_path(LJ_CLIP), dtype="float32")
    rng = np.random.default_rng(0)

    def room(seconds):
        tone = 0.003 * rng.standard_normal(int(seconds * rate)).astype(np.float32)
        tone[len(tone) // 2 : len(tone) // 2 + 40] += 0.3 * np.hanning(40).astype(np.float32)  # a click
        return tone

    padded = tmp_path / "padded.wav"
    soundfile.write(padded, np.concatenate([room(0.6), audio, room(0.6)]), rate)
    original = transfer.analyse_source(clip_path(LJ_CLIP), LJ_CLIP[3], source_voice="LJ")
    from_padded = transfer.analyse_source(padded, LJ_CLIP[3], source_voice="LJ")
    phonemes = original.inputs.phoneme_mask
    first, last = np.flatnonzero(phonemes)[[0, -1]]
    # the clip itself starts at its first sound: the padded one keeps the lead-in margin more (not the whole lead-in)
    assert abs(int(from_padded.durations[first]) - int(original.durations[first])) <= SPEECH_LEAD_SECONDS / HOP_SECONDS + 2
    assert abs(int(from_padded.durations[last]) - int(original.durations[last])) <= SPEECH_TAIL_SECONDS / HOP_SECONDS + 2


def test_a_transcript_that_does_not_match_is_refused_unless_forced(transfer):
    wrong = "Never so strange a prophet came up to Jerusalem, with his brother and a lamp."
    with pytest.raises(ReaderError, match="does not match"):
        transfer.analyse_source(clip_path(LJ_CLIP), wrong)
    forced = transfer.analyse_source(clip_path(LJ_CLIP), wrong, source_voice="LJ", force=True)
    assert not forced.transcript_fit.matches and forced.transcript_fit.score > forced.transcript_fit.threshold
    assert any("does not seem to match" in note for note in transfer.plan(forced, "kathleen").notes())


def test_durations_are_those_the_decoder_reconstructs_the_recording_best_with(transfer):
    from reader_runtime.features import log_mel_spectrogram

    assert transfer.joint_aligner is not None  # the shipped model has both aligners
    recording, inputs, _ = transfer.read_source(clip_path(KATHLEEN_CLIP), KATHLEEN_CLIP[3])
    log_mel = log_mel_spectrogram(recording.samples, FeatureSettings())
    speaker = transfer.speaker("kathleen")
    candidates = [a.align(token_inputs(inputs), log_mel).durations for a in (transfer.aligner, transfer.joint_aligner)]
    chosen, known_voice = transfer.decoder_fit(log_mel, inputs, speaker, candidates[0])
    assert known_voice and any(np.array_equal(chosen, c) for c in candidates)
    errors = [transfer.reconstruction_error(log_mel, inputs, speaker, d) for d in (*candidates, chosen)]
    assert errors[2] == min(errors[:2])
    prosody = transfer.analyse_source(clip_path(KATHLEEN_CLIP), KATHLEEN_CLIP[3], source_voice="kathleen")
    assert np.array_equal(prosody.durations, chosen) and prosody.known_voice


def test_telephone_band_audio_is_named_as_the_doubt_refused_or_forced_with_a_warning(tmp_path, transfer):
    audio, rate = soundfile.read(clip_path(KATHLEEN_CLIP), dtype="float32")
    telephone = tmp_path / "call_8k.wav"
    soundfile.write(telephone, soxr.resample(audio, rate, 8000), 8000)
    full_band = transfer.analyse_source(clip_path(KATHLEEN_CLIP), KATHLEEN_CLIP[3], source_voice="kathleen")
    assert full_band.doubts == () and upper_band_db(load_source(clip_path(KATHLEEN_CLIP), 22050).samples, 22050) > NARROW_BAND_DB
    assert upper_band_db(load_source(telephone, 22050).samples, 22050) < NARROW_BAND_DB
    try:
        prosody = transfer.analyse_source(telephone, KATHLEEN_CLIP[3], source_voice="kathleen")
    except ReaderError as error:  # refused: the message says why first, in one line
        assert str(error).startswith(f"{telephone} has no sound above 4 kHz") and "--force" in str(error) and "\n" not in str(error)
        prosody = transfer.analyse_source(telephone, KATHLEEN_CLIP[3], source_voice="kathleen", force=True)
    assert any(note.startswith("warning: ") and "no sound above 4 kHz" in note for note in transfer.plan(prosody, "LJ").notes())


def test_source_f0_mode_moves_the_source_contour_into_the_target_register(transfer):
    prosody = transfer.analyse_source(clip_path(LJ_CLIP), LJ_CLIP[3], source_voice="LJ")
    plan = transfer.plan(prosody, "kathleen", mode="codes+f0")
    vowels = prosody.inputs.stress_ids > 0
    target_own = transfer.acoustic.synthesize(token_inputs(prosody.inputs), transfer.speaker("kathleen"), duration_override=prosody.durations.astype(np.float32)).f0
    assert np.all(plan.f0_override > 0)
    # same intervals as the source, same mean (log) pitch over the vowels as the target reading the text
    assert np.allclose(np.diff(np.log(plan.f0_override)), np.diff(prosody.log_f0), atol=1e-4)
    assert np.mean(np.log(plan.f0_override[vowels])) == pytest.approx(np.mean(np.log(target_own[vowels])), abs=1e-4)
    decoded = transfer.decode(plan)
    assert np.allclose(decoded.f0, plan.f0_override, rtol=1e-3)


def test_register_shift_keeps_intervals():
    source = np.log(np.array([100.0, 150.0, 120.0, 90.0], np.float32))
    vowels = np.array([True, True, False, True])
    shifted = in_target_register(source, np.array([200.0, 240.0, 1.0, 180.0], np.float32), vowels)
    assert np.allclose(np.diff(np.log(shifted)), np.diff(source), atol=1e-5)
    assert np.mean(np.log(shifted[vowels])) == pytest.approx(np.mean(np.log([200.0, 240.0, 180.0])), abs=1e-5)


# Unseen speakers (speechocean762, Zhang et al. 2021), TRAIN-split clips: a low male voice and a female
# voice whose single-pass Praat track (65-600 Hz) drops an octave in places.
MALE_CLIP = ("speechocean762_adults", "004820005", "so0482", "Our wish is to live through this season.")
FEMALE_CLIP = ("speechocean762_adults", "000240031", "so0024", "We have climbed one step up the ladder.")


@pytest.mark.parametrize("clip", [MALE_CLIP, FEMALE_CLIP], ids=["male", "female"])
def test_source_f0_stays_in_the_speakers_own_range_without_octave_jumps(clip):
    recording = load_source(clip_path(clip), 22050)
    n_frames = recording.samples.size // 256 + 1
    f0 = frame_f0(recording.samples, 22050, 256, n_frames)
    voiced = f0[f0 > 0]
    assert voiced.size > 0.3 * n_frames
    octaves = np.log2(voiced / np.median(voiced))
    assert np.all(np.abs(octaves) < OCTAVE_JUMP + 0.3)  # no frame near an octave from the speaker's median
    settings = FeatureSettings(sample_rate=22050, hop_length=256)
    single_pass = f0_on_frame_grid(*praat_f0(recording.samples, 22050, settings.frame_rate, 65.0, 600.0), n_frames, settings)
    single_voiced = single_pass[single_pass > 0]
    if clip is FEMALE_CLIP:  # the fixed wide range halves some of her frames; the two passes do not
        assert np.mean(single_voiced < 0.7 * np.median(single_voiced)) > 0.03
        assert np.mean(voiced < 0.7 * np.median(voiced)) < 0.01


def test_squeezed_phonemes_are_lengthened_to_the_sources_pace_and_the_rest_kept():
    target = np.array([0, 4, 6, 5, 10, 8, 4, 30], np.int64)  # <bos>, six phonemes, a pause
    phonemes = np.array([False, True, True, True, True, True, True, False])
    source = np.array([0, 8, 12, 50, 20, 16, 1, 2], np.int64)  # twice the target's pace; one held, one squeezed, a short pause
    lengthened = without_squeezed_phonemes(source, target, phonemes)
    assert np.array_equal(lengthened[[0, 1, 2, 3, 4, 5, 7]], source[[0, 1, 2, 3, 4, 5, 7]])  # held sounds and pauses are his timing
    assert lengthened[6] == round(2 / SQUEEZED_PHONEME_FACTOR * 4)
    assert np.array_equal(without_squeezed_phonemes(source, target, np.zeros(8, bool)), source)


def test_a_pause_of_the_source_where_the_text_has_no_break_becomes_a_major_break(transfer):
    from reader.model_inputs import BREAK_IDS

    inputs = transcript_tokens("It was more than, just another record.", transfer.analyzer)
    boundaries = np.flatnonzero(inputs.boundary_mask)  # after it, was, more, than (a comma), just, another, record
    durations = np.full(len(inputs), 5, np.int64)
    durations[boundaries[[1, 3, 6]]] = 30  # paused after "was", at the comma (a major break already) and at the end
    paused = with_source_pauses(inputs, durations, 20)
    assert paused.symbol_ids[boundaries[1]] == BREAK_IDS[SOURCE_PAUSE_LEVEL]
    was = inputs.word_indices == inputs.word_indices[boundaries[1] - 1]
    assert np.all(paused.break_ids[was] == SOURCE_PAUSE_LEVEL + 1) and paused.break_ids[boundaries[1]] == SOURCE_PAUSE_LEVEL + 1
    others = np.ones(len(inputs), bool)
    others[was] = others[boundaries[1]] = False
    assert np.array_equal(paused.symbol_ids[others], inputs.symbol_ids[others]) and np.array_equal(paused.break_ids[others], inputs.break_ids[others])
    assert with_source_pauses(inputs, np.full(len(inputs), 5, np.int64), 20) is inputs  # no pause: the text's own breaks


def test_octave_jumps_are_moved_back_next_to_their_neighbours():
    f0 = np.array([0, 120, 122, 240, 125, 0, 0, 61, 124, 126, 0], np.float64)
    assert np.allclose(without_octave_jumps(f0), [0, 120, 122, 120, 125, 0, 0, 122, 124, 126, 0])


@pytest.mark.parametrize("target", ["kathleen", "LJ"])
def test_a_male_source_lands_in_the_target_voices_own_register(transfer, target):
    prosody = transfer.analyse_source(clip_path(MALE_CLIP), MALE_CLIP[3], force=True)
    vowels = prosody.inputs.stress_ids > 0
    plan = transfer.plan(prosody, target, mode="codes+f0")
    reading = transfer.acoustic.synthesize(token_inputs(prosody.inputs), transfer.speaker(target)).f0
    # the target's median vowel pitch within a semitone of its own reading, not dragged towards the source's
    assert abs(np.log2(np.median(plan.f0_override[vowels]) / np.median(reading[vowels]))) < 1 / 12
    assert np.median(plan.f0_override[vowels]) > 1.05 * np.exp(np.median(prosody.log_f0[vowels]))


def test_an_unheard_voice_gives_its_timing_and_melody_and_the_target_predicts_the_rest(transfer):
    known = transfer.plan(transfer.analyse_source(clip_path(LJ_CLIP), LJ_CLIP[3], source_voice="LJ"), "kathleen", mode="codes+f0")
    assert known.prosody.known_voice and known.prosody_codes is known.prosody.codes
    prosody = transfer.analyse_source(clip_path(MALE_CLIP), MALE_CLIP[3], force=True)
    assert not prosody.known_voice  # the decoder does not reconstruct him as one of its voices
    plan = transfer.plan(prosody, "kathleen", mode="codes+f0")
    assert plan.prosody_codes is None and np.all(plan.f0_override > 0)
    assert any("unlike the model's voices" in note for note in plan.notes())
    output = transfer.decode(plan)
    assert np.array_equal(output.durations, plan.durations)
    # his timing: pauses as he made them, and phonemes too but for outliers from his pace
    phonemes = prosody.inputs.phoneme_mask
    assert np.array_equal(plan.durations[~phonemes], prosody.durations[~phonemes])
    assert np.mean(plan.durations[phonemes] == prosody.durations[phonemes]) > 0.8
    vowels = prosody.inputs.stress_ids > 0
    assert np.corrcoef(np.log(output.f0[vowels]), prosody.log_f0[vowels])[0, 1] > 0.9  # his melody
    codes_only = transfer.plan(prosody, "kathleen", mode="codes")  # the codes mode keeps his codes
    assert codes_only.prosody_codes is prosody.codes and not any("unlike" in note for note in codes_only.notes())


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_text("this is not audio\n"), "not an audio file"),
        (lambda p: soundfile.write(p, np.zeros(22050, np.float32), 22050), "silent"),
        (lambda p: soundfile.write(p, np.zeros(0, np.float32), 22050), "holds no audio"),
        (lambda p: soundfile.write(p, 0.1 * np.random.default_rng(0).standard_normal(int(8000 * (MAX_SOURCE_SECONDS + 1))), 8000), "split it"),
        (lambda p: None, "not found"),
    ],
    ids=["not-audio", "silent", "empty", "too-long", "missing"],
)
def test_bad_source_files_give_one_clear_error(tmp_path, make, message):
    path = tmp_path / "source.wav"
    make(path)
    with pytest.raises(ReaderError, match=message):
        load_source(path, 22050)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "reader", *args], check=False, capture_output=True, text=True, env=os.environ.copy(), timeout=300)


def test_cli_transfers_into_a_file_and_reports_bad_input_in_one_line(tmp_path, transfer):
    out = tmp_path / "out.wav"
    done = cli("transfer", clip_path(KATHLEEN_CLIP), "--text", KATHLEEN_CLIP[3], "--voice", "LJ", "--source-voice", "kathleen", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert abs(seconds(out) - transfer.read_source(clip_path(KATHLEEN_CLIP), KATHLEEN_CLIP[3])[0].samples.size / 22050) < 2 * HOP_SECONDS
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(22050, np.float32), 22050)
    for source, text in ((silent, "Hello there."), (clip_path(KATHLEEN_CLIP), "A completely different sentence about the weather in Spain.")):
        failed = cli("transfer", str(source), "--text", text, "--voice", "LJ", "-o", str(tmp_path / "bad.wav"))
        assert failed.returncode == 2 and not (tmp_path / "bad.wav").exists()
        assert failed.stderr.count("\n") == 1 and failed.stderr.startswith("reader: error: ") and "Traceback" not in failed.stderr
