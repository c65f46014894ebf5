import errno
import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile

from reader.errors import DiskFullError, OutputError
from reader.io.files import AtomicFile
from reader.io.sinks import FileSink, RawPCMSink, to_pcm16

SR = 22050


def tone(seconds=0.5, freq=220.0):
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_file_sink_writes_complete_file_only_on_close(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    with FileSink(SR, path) as sink:
        sink.write(tone())
        assert not path.exists()  # still under a temporary name
        sink.write(tone())
    data, sr = soundfile.read(path, dtype="float32")
    assert sr == SR and len(data) == 2 * len(tone())
    assert np.max(np.abs(data - np.concatenate([tone(), tone()]))) < 1e-3
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_file_sink_cancelled_leaves_no_file(tmp_path):
    path = tmp_path / "out.wav"
    with pytest.raises(KeyboardInterrupt):
        with FileSink(SR, path) as sink:
            sink.write(tone())
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_file_sink_bad_targets(tmp_path):
    with pytest.raises(OutputError, match="wav or .flac"):
        FileSink(SR, tmp_path / "out.mp4")
    with pytest.raises(OutputError, match="does not exist"):
        FileSink(SR, tmp_path / "missing" / "out.wav")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(OutputError, match="cannot write"):
            FileSink(SR, locked / "out.wav")
    finally:
        locked.chmod(0o700)


def test_raw_pcm_sink_writes_16_bit_little_endian():
    buffer = io.BytesIO()
    with RawPCMSink(SR, buffer) as sink:
        sink.write(np.array([0.0, 0.5, -1.0, 2.0], np.float32))
    assert np.frombuffer(buffer.getvalue(), "<i2").tolist() == [0, 16384, -32767, 32767]
    assert to_pcm16(np.zeros(3)).dtype == np.dtype("<i2")


def run_with_alsa(home, code):
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=60)


def test_sound_device_sink_plays_through_portaudio_into_alsa_null_device(tmp_path):
    (tmp_path / ".asoundrc").write_text("pcm.!default { type null }\n")
    proc = run_with_alsa(
        tmp_path,
        """
        import numpy as np
        from reader.io.sinks import SoundDeviceSink
        with SoundDeviceSink(22050) as sink:
            sink.write(np.zeros(22050, np.float32))
        print("played")
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert "played" in proc.stdout


def test_no_audio_device_is_a_clear_error(tmp_path):
    # an ALSA configuration whose default device does not exist
    (tmp_path / ".asoundrc").write_text('pcm.!default { type hw card 99 }\nctl.!default { type hw card 99 }\n')
    proc = run_with_alsa(
        tmp_path,
        """
        from reader.errors import OutputError
        from reader.io.sinks import SoundDeviceSink
        try:
            SoundDeviceSink(22050)
        except OutputError as exc:
            print("ERROR:", exc)
        """,
    )
    assert "ERROR: no audio output device" in proc.stdout, proc.stdout + proc.stderr


def test_finished_file_gets_the_users_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with FileSink(SR, tmp_path / "out.wav") as sink:
            sink.write(tone())
    finally:
        os.umask(old)
    assert (tmp_path / "out.wav").stat().st_mode & 0o777 == 0o644


def test_stale_parts_of_the_same_output_are_removed_and_live_ones_kept(tmp_path):
    import fcntl

    stale = tmp_path / ".out.wav.k1ll3d00.part"  # left by a render killed with kill -9
    stale.write_bytes(b"\0" * 1000)
    live = tmp_path / ".out.wav.w0rk1ng0.part"  # another render of the same name, still writing
    live.write_bytes(b"\0" * 1000)
    other = tmp_path / ".other.wav.k1ll3d00.part"  # another output's part
    other.write_bytes(b"\0" * 1000)
    with live.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with FileSink(SR, tmp_path / "out.wav") as sink:
            sink.write(tone())
        assert not stale.exists() and live.exists() and other.exists()
    assert (tmp_path / "out.wav").is_file()


def test_atomic_file_deletes_its_part_on_error_and_names_the_target(tmp_path):
    target = tmp_path / "data.bin"
    with pytest.raises(OutputError, match=f"writing {target} failed"):
        with AtomicFile(target) as partial:
            partial.write_bytes(b"half")
            raise OSError(errno.EIO, "Input/output error")
    assert list(tmp_path.iterdir()) == []
    with AtomicFile(target) as partial:
        partial.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [target]


def test_raw_pcm_into_a_full_device_says_the_disk_is_full():
    with open("/dev/full", "wb", buffering=0) as device:
        with pytest.raises(DiskFullError, match="^the disk is full while writing standard output$"):
            with RawPCMSink(SR, device) as sink:
                sink.write(tone())


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_file_sink_on_a_full_disk_says_so_and_leaves_nothing(small_disk, suffix):
    target = small_disk / f"out{suffix}"
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, SR * 60).astype(np.float32)  # FLAC cannot shrink it much
    with pytest.raises(DiskFullError, match=f"^the disk is full while writing {target}$"):
        with FileSink(SR, target) as sink:
            for _ in range(10):
                sink.write(noise)
    assert list(small_disk.iterdir()) == []
