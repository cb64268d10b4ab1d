"""Label alignment: a direct path from a clip's label to the projectors.

Through the LM alone, a projector learns only from gradients that cross every LM layer, and on a
few hundred real clips that is slow (a SmolLM2 model after three epochs of label SFT on Emo-DB
answered mostly angry, sad or neutral). The alignment loss scores a clip's mean media embedding
against the embeddings of the label words (cosine similarity, cross-entropy): it pulls a clip's
media tokens towards the word for its emotion, a word the pretrained LM already reads. It can
run beside SFT (`sft.label_alignment`) and, with no LM computation at all, as a warm-up of the
projectors before SFT (`sft.alignment_epochs`), on the frozen towers' cached features.

Level alignment (`sft.level_alignment`) does the same for what was measured of a clip's voice
(``meta.acoustics``, `r1omni data describe-voice`): per attribute, the mean media embedding is
scored against the words of its three levels ("low-pitched", "mid-pitched", "high-pitched"), so
that the tokens carry the measured level towards the word a rationale uses for it.
"""

from __future__ import annotations

import torch
from torch import nn

from r1omni.claims import LEVEL_WORDS
from r1omni.labels import vocabulary

SCALE = 10.0  # cosine similarities in [-1, 1] times this are the logits


def word_embeddings(policy, words) -> torch.Tensor:
    """Each word's input embedding ``[W, H]``: the mean of its tokens' rows, read afresh each call
    (the embedding may be training)."""
    embed = policy.input_embeddings()
    return torch.stack([embed.weight[policy.tokenizer(f" {word}", add_special_tokens=False)["input_ids"]].mean(0)
                        for word in words])


def label_words(policy, labels: str) -> tuple[list[str], torch.Tensor]:
    """The vocabulary `labels` and each label word's input embedding ``[C, H]``."""
    names = list(vocabulary(labels))
    return names, word_embeddings(policy, names)


def level_words(policy) -> dict[str, torch.Tensor]:
    """Per measured voice attribute, its three level words' embeddings ``[3, H]``."""
    return {name: word_embeddings(policy, words) for name, words in LEVEL_WORDS.items()}


def measured_levels(row) -> dict[str, int]:
    """A row's measured voice levels ({attribute: 0, 1 or 2}); empty when it has none."""
    acoustics = (row.meta or {}).get("acoustics") or {}
    return {name: value["level"] for name, value in acoustics.items()
            if name in LEVEL_WORDS and isinstance(value, dict) and value.get("level") in (0, 1, 2)}


def media_mean(prompt) -> torch.Tensor:
    """The mean of a prompt's media embeddings ``[H]`` (where its ids are -1)."""
    return prompt.embeds[prompt.ids == -1].float().mean(0)


def clip_mean(policy, clip) -> torch.Tensor:
    """The mean of a clip's (`ClipMedia`) media embeddings ``[H]``, without building a prompt."""
    return torch.cat(list(policy.encode(clip).values())).float().mean(0)


def cosine_logits(media: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """``[B, W]``: each mean media embedding ``[B, H]`` against each word's ``[W, H]``, cosine x SCALE."""
    return SCALE * nn.functional.normalize(media, dim=-1) @ nn.functional.normalize(vectors.float(), dim=-1).T


def alignment_loss(media: torch.Tensor, labels: list[str], words: tuple[list[str], torch.Tensor],
                   class_weights: dict[str, float] | None = None) -> torch.Tensor:
    """Cross-entropy of mean media embeddings ``[B, H]`` against the label words' embeddings;
    with `class_weights`, each clip's term weighted by its label's weight (PyTorch's weighted mean)."""
    names, vectors = words
    logits = cosine_logits(media, vectors)
    target = torch.tensor([names.index(label) for label in labels], device=logits.device)
    weight = None if class_weights is None else \
        torch.tensor([class_weights.get(name, 1.0) for name in names], device=logits.device)  # [C]
    return nn.functional.cross_entropy(logits, target, weight=weight)


def level_loss(media: torch.Tensor, levels: list[dict[str, int]], words: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean over attributes of the cross-entropy of mean media embeddings ``[B, H]`` against each
    attribute's level words, on the clips whose level of it was measured."""
    losses = []
    for name, vectors in words.items():
        rows = [i for i, clip in enumerate(levels) if name in clip]
        if rows:
            logits = cosine_logits(media[rows], vectors)  # [b, 3]
            target = torch.tensor([levels[i][name] for i in rows], device=logits.device)
            losses.append(nn.functional.cross_entropy(logits, target))
    return torch.stack(losses).mean() if losses else media.sum() * 0.0


def warm_up_projectors(policy, clips: list, labels: list[str], vocabulary_name: str, epochs: int, lr: float,
                       batch_size: int, seed: int = 0, say=print, levels: list[dict[str, int]] | None = None,
                       level_weight: float = 0.0, class_weights: dict[str, float] | None = None) -> list[float]:
    """Train only the projectors on the alignment loss (each label weighted by `class_weights`)
    for `epochs` passes over `clips` (`ClipMedia`, frozen towers' features from the feature
    cache), plus `level_weight` times the level loss on each clip's measured `levels`; the LM is
    not run. Returns the mean loss of each epoch."""
    projectors = [p for module in policy.adapters() for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(projectors, lr=lr)
    words = label_words(policy, vocabulary_name)
    words = (words[0], words[1].detach())
    levels_of = {name: vectors.detach() for name, vectors in level_words(policy).items()} if level_weight else None
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for epoch in range(epochs):
        order = torch.randperm(len(clips), generator=generator).tolist()
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            media = torch.stack([clip_mean(policy, clips[i]) for i in batch])  # [b, H]
            loss = alignment_loss(media, [labels[i] for i in batch], words, class_weights)
            if levels_of is not None:
                loss = loss + level_weight * level_loss(media, [levels[i] for i in batch], levels_of)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(order))
        if epoch == 0 or (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            say(f"projector warm-up epoch {epoch + 1}/{epochs}: alignment loss {losses[-1]:.3f}")
    return losses
