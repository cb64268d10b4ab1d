"""Rows of several manifests in one: a split kept, classes capped per corpus, for training one
model on corpora of different modalities (face images, speech, talking faces) at once."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import numpy as np

from r1omni.data.manifest import ClipRow
from r1omni.errors import ManifestError
from r1omni.labels import vocabulary


def mix_manifests(manifests: list[list[ClipRow]], split: str | None = None, per_class: int | None = None,
                  seed: int = 0, fill_rationale: str | None = None, labels: str | None = None) -> list[ClipRow]:
    """The rows of every manifest, in order: only those of `split` and with a label of the
    vocabulary `labels` (e.g. ``emodb&ravdess``, the classes both share) when given, and at most
    `per_class` rows of each (dataset, label), drawn by `seed` (the others are dropped, so a large
    corpus does not drown a small one). Ids must stay unique across the manifests.
    `fill_rationale`: the reasoning text of rows that have none (for a cold start over corpora of
    which only some have measured descriptions; it should state what is given, not invent cues)."""
    if per_class is not None and per_class < 1:
        raise ManifestError(f"per_class must be at least 1, got {per_class}")
    allowed = None if labels is None else set(vocabulary(labels))
    rng = np.random.default_rng(seed)
    mixed: list[ClipRow] = []
    for rows in manifests:
        kept = [r for r in rows if (split is None or r.split == split) and (allowed is None or r.label in allowed)]
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, row in enumerate(kept):
            groups[(row.dataset, row.label)].append(i)
        chosen = set(range(len(kept)))
        if per_class is not None:
            chosen = {int(i) for members in groups.values()
                      for i in (rng.choice(members, per_class, replace=False) if len(members) > per_class else members)}
        mixed += [row if row.rationale or fill_rationale is None else replace(row, rationale=fill_rationale)
                  for i, row in enumerate(kept) if i in chosen]
    seen: set[str] = set()
    clashes = sorted({r.id for r in mixed if r.id in seen or seen.add(r.id)})
    if clashes:
        raise ManifestError(f"{len(clashes)} ids occur twice in the mix (first: {clashes[:3]}); ids must be unique")
    if not mixed:
        raise ManifestError(f"no row is left to mix (split={split!r}, labels={labels!r})")
    return mixed
