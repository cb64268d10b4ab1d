"""Chat tokens shared by every backend, and the nano preset's byte-level BPE tokenizer."""

from __future__ import annotations

from collections.abc import Iterable

from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

END_OF_TEXT = "<|endoftext|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
# Markers wrapping each modality's tokens in the prompt, as Qwen2.5-Omni / HumanOmni do.
MODALITY_MARKERS = {"video": ("<|vision_start|>", "<|vision_end|>"), "audio": ("<|audio_start|>", "<|audio_end|>")}
SPECIAL_TOKENS = [END_OF_TEXT, IM_START, IM_END] + [m for pair in MODALITY_MARKERS.values() for m in pair]

# Text for the tokenizers of tiny test models (`OmniPolicy.tiny_variants`): the prompt, tags and labels.
TINY_CORPUS = [
    "<think>The brows are lowered and the voice is loud.</think>\n<answer>angry</answer>",
    "<think>A smile and raised cheeks; lively intonation.</think>\n<answer>happy</answer>",
    "As an emotional recognition expert; throughout the video, which emotion conveyed by the characters "
    "is the most obvious to you? Output the thinking process in <think> </think> and final emotion in "
    "<answer> </answer> tags.",
    "sad neutral surprise disgust fear trembling breathy pauses",
] * 10

# Qwen's ChatML layout; message contents keep their <video>/<audio> placeholders verbatim.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def train_nano_tokenizer(corpus: Iterable[str], vocab_size: int = 4096,
                         extra_special_tokens: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `corpus`, with the chat special tokens (and any
    `extra_special_tokens`, e.g. a backend's own modality tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS + list(extra_special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token=IM_END, pad_token=END_OF_TEXT, bos_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def add_chat_tokens(tokenizer: PreTrainedTokenizerBase) -> int:
    """Give a pretrained tokenizer the modality markers and, if it has none, the chat template.
    Returns how many tokens were added (the LM's embedding table must grow by as many)."""
    added = tokenizer.add_special_tokens({"additional_special_tokens": [t for t in SPECIAL_TOKENS
                                                                        if t not in tokenizer.get_vocab()]})
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = END_OF_TEXT if END_OF_TEXT in tokenizer.get_vocab() else tokenizer.eos_token
    return added


def stop_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Tokens that end an assistant turn."""
    vocab = tokenizer.get_vocab()
    ids = {vocab[t] for t in (IM_END, END_OF_TEXT) if t in vocab}
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)
