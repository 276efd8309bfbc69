"""The test clips both pipelines classify: synthesised, so the example runs offline in seconds.

Each clip is (seconds, pitch in Hz, label); clips shorter than
``N_FRAMES`` frames are padded by the frontend, longer ones cropped.
"""

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 160
N_MELS = 64
N_FRAMES = 312  # the model's input length: 3.11 s of audio
TOP_DB = 80.0

CLIPS = [
    (3.5, 440.0, "call"),  # 351 frames: cropped
    (2.0, 880.0, "call"),  # 201 frames: padded
    (3.0, 300.0, "noise"),  # 301 frames: padded
    (1.5, 660.0, "noise"),  # 151 frames: padded
]
