"""Label alignment: a direct path from a clip's label to the projectors.

Through the LM alone, a projector learns only from gradients that cross every LM layer, and on a
few hundred real clips that is slow (a SmolLM2 model after three epochs of label SFT on Emo-DB
answered mostly angry, sad or neutral). The alignment loss scores a clip's mean media embedding
against the embeddings of the label words (cosine similarity, cross-entropy): it pulls a clip's
media tokens towards the word for its emotion, a word the pretrained LM already reads. It can
run beside SFT (`sft.label_alignment`) and, with no LM computation at all, as a warm-up of the
projectors before SFT (`sft.alignment_epochs`), on the frozen towers' cached features.
"""

from __future__ import annotations

import torch
from torch import nn

from r1omni.labels import vocabulary

SCALE = 10.0  # cosine similarities in [-1, 1] times this are the logits


def label_words(policy, labels: str) -> tuple[list[str], torch.Tensor]:
    """The vocabulary `labels` and each label word's input embedding ``[C, H]`` (the mean of its
    tokens' rows, read afresh each call: the embedding may be training)."""
    names = list(vocabulary(labels))
    embed = policy.lm.get_input_embeddings()
    rows = [embed.weight[policy.tokenizer(f" {name}", add_special_tokens=False)["input_ids"]].mean(0)
            for name in names]
    return names, torch.stack(rows)


def media_mean(prompt) -> torch.Tensor:
    """The mean of a prompt's media embeddings ``[H]`` (where its ids are -1)."""
    return prompt.embeds[prompt.ids == -1].float().mean(0)


def alignment_loss(media: torch.Tensor, labels: list[str], words: tuple[list[str], torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of mean media embeddings ``[B, H]`` against the label words' embeddings."""
    names, vectors = words
    logits = SCALE * nn.functional.normalize(media, dim=-1) @ nn.functional.normalize(vectors.float(), dim=-1).T
    target = torch.tensor([names.index(label) for label in labels], device=logits.device)
    return nn.functional.cross_entropy(logits, target)


def warm_up_projectors(policy, clips: list, labels: list[str], vocabulary_name: str, epochs: int, lr: float,
                       batch_size: int, seed: int = 0, say=print) -> list[float]:
    """Train only the projectors on the alignment loss for `epochs` passes over `clips`
    (`ClipMedia`, frozen towers' features from the feature cache); the LM is not run. Returns
    the mean loss of each epoch."""
    projectors = [p for module in policy.adapters() for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(projectors, lr=lr)
    words = label_words(policy, vocabulary_name)
    words = (words[0], words[1].detach())
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for epoch in range(epochs):
        order = torch.randperm(len(clips), generator=generator).tolist()
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            media = torch.stack([torch.cat(list(policy.encode(clips[i]).values())).float().mean(0) for i in batch])
            loss = alignment_loss(media, [labels[i] for i in batch], words)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(order))
        if epoch == 0 or (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            say(f"projector warm-up epoch {epoch + 1}/{epochs}: alignment loss {losses[-1]:.3f}")
    return losses
