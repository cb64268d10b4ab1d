"""The `humanomni` backend: HumanOmni-0.5B / R1-Omni-0.5B computed as their authors' code does.

A Qwen2 LM reads a prompt whose ``<video>`` / ``<audio>`` placeholders are replaced by clip
tokens: SigLIP's second-to-last hidden layer for 8 frames goes through `AllInOneSmall`'s three
branches, mixed by softmax weights that a BERT-CLS gate computes from the instruction text (392
tokens; 170 with the HumanOmni repository's slow-fast compressor, ``slow_fast``); Whisper's
encoder output, average-pooled by 3, goes through a two-layer MLP (500 tokens). The placeholders
are wrapped in ``<vi_start>…<vi_end>`` / ``<au_start>…<au_end>`` as plain text and each text
piece is tokenised on its own, so BPE never merges across a placeholder; positions are plain
0..L-1. Frames are sampled by the official index formula and stretched to 224x224 (bicubic).

Unlike the official code, a clip without a soundtrack gets no audio placeholder (the official
code feeds 10 s of silence), and audio-only prompts carry no video tokens (the official code feeds
a dummy video its SigLIP cannot read). `reference_forward` runs the official computation on
preprocessed tensors (the parity tests' entry point).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import torch
from torch import nn

from r1omni.errors import ConfigError
from r1omni.models.base import ClipMedia, OmniPolicy, PolicyConfig, register_backend
from r1omni.models.humanomni.projector import AllInOneSmall, mlp, slow_fast
from r1omni.models.shared_prefix import Prompt
from r1omni.models.towers import TowerFeatures, build_tower
from r1omni.prompts import PLACEHOLDERS

# The official code's ids for the placeholders inside input_ids (constants.py).
PLACEHOLDER_IDS = {"video": -201, "audio": -202}
# `mm_use_x_start_end`: the wrappers are plain text, never added tokens.
WRAPPERS = {"video": ("<vi_start>", "<vi_end>"), "audio": ("<au_start>", "<au_end>")}
BERT_TOKENIZER_DIR = "bert_tokenizer"  # where a saved folder keeps the gate's tokenizer
GATE_HIDDEN = 3584  # hard-coded in the official humanomni_arch.py, not derived from any config


@register_backend("humanomni")
class HumanOmniPolicy(TowerFeatures, OmniPolicy):
    """`PolicyConfig.backend_options`: ``bert`` (the gate's BertConfig dict), ``gate_hidden``,
    ``projector_depth``, ``slow_fast`` (170 video tokens instead of 392)."""

    def __init__(self, config: PolicyConfig, tokenizer, bert_tokenizer=None):
        super().__init__()
        from transformers import AutoConfig, AutoModelForCausalLM, BertConfig, BertModel

        config.validate()
        config = copy.deepcopy(config)  # filled in below; the caller's stays as given
        if bert_tokenizer is None:
            raise ConfigError("the humanomni backend needs the BERT tokenizer of its gate (bert-base-uncased's "
                              "vocab.txt): pass bert_tokenizer=")
        options = {"gate_hidden": GATE_HIDDEN, "projector_depth": 2, "slow_fast": False, **config.backend_options}
        config.backend_options = options
        self.config, self.tokenizer, self.bert_tokenizer = config, tokenizer, bert_tokenizer
        lm = dict(config.lm)
        self.lm = AutoModelForCausalLM.from_config(AutoConfig.for_model(lm.pop("model_type"), **lm),
                                                   attn_implementation=config.attn_implementation)
        self.towers = nn.ModuleDict({m: build_tower(c, m) for m, c in config.towers.items()})
        config.towers = {m: t.config for m, t in self.towers.items()}
        width = self.lm.get_input_embeddings().embedding_dim
        self.projector = AllInOneSmall(self.towers["video"].out_dim, width, options["projector_depth"])
        self.audio_projector = mlp(self.towers["audio"].out_dim, width)
        # Dropout off (BERT's default is 0.1; the LM has none): GRPO's probability ratios and the
        # processes of a distributed run need the same function in every pass.
        self.bert = BertModel(BertConfig(**{**options["bert"], "hidden_dropout_prob": 0.0,
                                            "attention_probs_dropout_prob": 0.0}))
        self.bert.pooler.requires_grad_(False)  # in the released files, but the gate reads the CLS state
        self.gate = nn.Sequential(nn.Linear(self.bert.config.hidden_size, options["gate_hidden"]), nn.GELU(),
                                  nn.Linear(options["gate_hidden"], 3))
        self.stop_ids = [tokenizer.eos_token_id]  # the official KeywordsStoppingCriteria(eos)
        self.finish_building()

    # ------------------------------------------------------------------ the interface

    def adapters(self) -> list[nn.Module]:
        # The gate's BERT trains with the projectors, as in R1-Omni's GRPO (its SFT froze it).
        return [self.projector, self.audio_projector, self.bert, self.gate]

    def frame_reading(self) -> dict:
        # The official process_video: frame indices round((N-1)/8*(i+0.5)), SigLIP's processor
        # stretching each frame to 224x224 with PIL's bicubic filter (no square padding).
        return {"mode": "resize", "sampling": "index", "resample": "bicubic"}

    @classmethod
    def saved_parts(cls, directory: Path) -> dict:
        from transformers import BertTokenizer

        folder = Path(directory) / BERT_TOKENIZER_DIR
        if not folder.is_dir():
            raise ConfigError(f"{directory}: no {BERT_TOKENIZER_DIR}/ (the gate's BERT tokenizer) beside the weights")
        return {"bert_tokenizer": BertTokenizer.from_pretrained(folder)}

    def save_pretrained(self, directory, weights=None) -> Path:
        directory = super().save_pretrained(directory, weights)
        self.bert_tokenizer.save_pretrained(directory / BERT_TOKENIZER_DIR)
        return directory

    @classmethod
    def tiny_variants(cls):
        return {"humanomni": tiny_humanomni}

    # ------------------------------------------------------------------ encoding

    def video_branches(self, features: torch.Tensor) -> torch.Tensor:
        """SigLIP features ``[T, P, C]`` -> the projector's branches ``[3, T * P/4, H]``."""
        return self.projector(features.to(self.lm.dtype))

    def audio_tokens(self, pooled: torch.Tensor) -> torch.Tensor:
        """Whisper features pooled by 3 ``[500, D]`` -> audio tokens ``[500, H]``."""
        return self.audio_projector(pooled.to(self.lm.dtype))

    def encode(self, media: ClipMedia) -> dict[str, torch.Tensor]:
        """``{"video": branches [3, T*49, H], "audio": tokens [500, H]}`` for what the clip has;
        the video branches are mixed in `build_inputs`, where the instruction is known."""
        embeddings = {}
        for modality in media.present():
            features = self.tower_features(modality, media)
            if modality == "video":  # [T * P, C] -> [T, P, C]
                patches = self.towers["video"].grid ** 2
                embeddings["video"] = self.video_branches(features.view(-1, patches, features.shape[-1]))
            else:
                embeddings["audio"] = self.audio_tokens(features)
        return embeddings

    def gate_weights(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     token_type_ids: torch.Tensor) -> torch.Tensor:
        """Softmax weights of the video, body and face branches ``[B, 3]`` from BERT's CLS state."""
        cls = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                        token_type_ids=token_type_ids).last_hidden_state[:, 0]
        return torch.softmax(self.gate(cls), dim=1)

    def question_gate(self, question: str) -> torch.Tensor:
        """Gate weights ``[3]`` for the instruction text (as the official inference passes it)."""
        encoded = self.bert_tokenizer([question], return_tensors="pt", padding=True, truncation=True)
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        return self.gate_weights(encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"])[0]

    def fuse(self, branches: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``[3, T*49, H]`` mixed by ``[3]`` -> video tokens ``[T*49, H]`` (or 170 with slow_fast)."""
        tokens = (branches * weights.to(branches.dtype)[:, None, None]).sum(0)
        if self.config.backend_options["slow_fast"]:
            per_frame = (-(-self.towers["video"].grid // 2)) ** 2  # 7 x 7 at SigLIP-224/16
            tokens = slow_fast(tokens, len(tokens) // per_frame)
        return tokens

    # ------------------------------------------------------------------ prompts

    def prompt_ids(self, text: str) -> list[int]:
        """Token ids of a rendered prompt with each placeholder as its official negative id:
        placeholders wrapped in their start/end text, every text piece tokenised on its own."""
        for modality, placeholder in PLACEHOLDERS.items():
            start, end = WRAPPERS[modality]
            text = text.replace(placeholder, start + placeholder + end)
        pattern = "(" + "|".join(re.escape(p) for p in PLACEHOLDERS.values()) + ")"
        ids: list[int] = []
        for piece in re.split(pattern, text):
            modality = next((m for m, p in PLACEHOLDERS.items() if p == piece), None)
            if modality is not None:
                ids.append(PLACEHOLDER_IDS[modality])
            elif piece:
                ids += self.tokenizer(piece, add_special_tokens=False)["input_ids"]
        return ids

    def splice(self, text: str, embeddings: dict, messages: list[dict]) -> Prompt:
        """The official chat prompt with the clip's tokens spliced in; the video branches are mixed
        by the gate's weights for the last user message's instruction."""
        tokens = dict(embeddings)
        if "video" in tokens:
            tokens["video"] = self.fuse(embeddings["video"], self.question_gate(instruction(messages)))
        return self.splice_ids(torch.tensor(self.prompt_ids(text)), tokens)

    def splice_ids(self, ids: torch.Tensor, tokens: dict[str, torch.Tensor]) -> Prompt:
        """Embed ids ``[L]`` and put each modality's tokens in place of its placeholder id."""
        pieces, start = [], 0
        where = [(i, m) for i, value in enumerate(ids.tolist()) for m, pid in PLACEHOLDER_IDS.items() if value == pid]
        for index, modality in [*where, (len(ids), None)]:
            pieces.append(ids[start:index])
            if modality is not None:
                pieces.append(tokens[modality])
            start = index + 1
        return self.join_pieces(pieces)

    # ------------------------------------------------------------------ parity entry point

    @torch.no_grad()
    def reference_stages(self, input_ids, pixel_values, input_features, bert_input_ids, bert_attention_mask,
                         bert_token_type_ids) -> dict[str, torch.Tensor]:
        """The official forward on preprocessed tensors (`reference_forward`), every stage named
        as in the parity fixture's ``outputs.safetensors``: ``input_ids`` ``[1, L]`` holding the
        -201/-202 placeholders, ``pixel_values`` ``[T, 3, 224, 224]`` (SigLIP's processor output),
        ``input_features`` ``[1, 128, 3000]`` (Whisper's), the gate's BERT inputs ``[1, Lb]``."""
        vision, audio = self.towers["video"], self.towers["audio"]
        dtype = self.lm.dtype
        features = vision.model(pixel_values=pixel_values.to(self.device, dtype),
                                output_hidden_states=True).hidden_states[vision.config["layer"]]
        branches = self.video_branches(features)
        weights = self.gate_weights(bert_input_ids.to(self.device), bert_attention_mask.to(self.device),
                                    bert_token_type_ids.to(self.device))
        whisper = audio.model(input_features.to(self.device, dtype)).last_hidden_state
        pooled = nn.functional.avg_pool1d(whisper.transpose(1, 2), 3, 3).transpose(1, 2)
        stages = {"vision.features": features, "proj.video_branch": branches[0][None],
                  "proj.body_branch": branches[1][None], "gate.probs": weights,
                  "video.fused_tokens": self.fuse(branches, weights[0]),
                  "audio.whisper_last_hidden_state": whisper, "audio.pooled": pooled,
                  "audio.tokens": self.audio_tokens(pooled[0])}
        prompt = self.splice_ids(input_ids[0], {"video": stages["video.fused_tokens"], "audio": stages["audio.tokens"]})
        stages["lm.inputs_embeds"] = prompt.embeds[None]
        stages["lm.logits"] = self.lm(inputs_embeds=prompt.embeds[None], position_ids=prompt.positions[None]).logits
        return stages

    def reference_forward(self, **inputs) -> torch.Tensor:
        """Logits ``[1, L, vocab]`` of the official forward on preprocessed tensors (see
        `reference_stages` for the inputs)."""
        return self.reference_stages(**inputs)["lm.logits"]


def instruction(messages: list[dict]) -> str:
    """The last user message without its placeholders: the question the official inference gives
    the gate (``question=instruct``)."""
    user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    for placeholder in PLACEHOLDERS.values():
        user = user.replace(placeholder + "\n", "").replace(placeholder, "")
    return user.strip()


# ----------------------------------------------------------------------------- tiny test model


def tiny_humanomni() -> HumanOmniPolicy:
    """The humanomni composition at toy widths with random weights (the backend test matrix)."""
    import tempfile

    from transformers import BertTokenizer

    from r1omni.models.tokenizer import TINY_CORPUS, train_nano_tokenizer

    tokenizer = train_nano_tokenizer(TINY_CORPUS, 300)
    words = sorted({w for text in TINY_CORPUS for w in text.lower().replace("<", " ").replace(">", " ").split()})
    with tempfile.TemporaryDirectory() as folder:
        vocab = Path(folder) / "vocab.txt"
        vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
        bert_tokenizer = BertTokenizer(str(vocab))
    lm = dict(model_type="qwen2", vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
              eos_token_id=tokenizer.eos_token_id)
    vision = dict(model_type="siglip_vision_model", hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                  num_attention_heads=2, image_size=32, patch_size=8)
    audio = dict(model_type="whisper", d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32,
                 num_mel_bins=80, max_source_positions=1500)
    bert = dict(vocab_size=len(bert_tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=32)
    config = PolicyConfig(backend="humanomni", lm=lm,
                          towers={"video": {"kind": "hf_vision", "layer": -2, "pool": 4, "hf_config": vision},
                                  "audio": {"kind": "whisper", "pool": 3, "hf_config": audio}},
                          frozen=["video", "audio"], num_frames=4, frame_size=32,
                          backend_options={"bert": bert, "gate_hidden": 32})
    return HumanOmniPolicy(config, tokenizer, bert_tokenizer)
