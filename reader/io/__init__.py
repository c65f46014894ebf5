"""Where audio and files go: audio sinks (reader.io.sinks) and safe file writing (reader.io.files), for every part of the reader."""
