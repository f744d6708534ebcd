"""What the semantic cache's per-text work costs: guard features, built-in embedding, both.

On a cache miss the gateway computes, for each turn's text, the guard
features (`axtui.cache.guards.features`) and their `exact_signature`, and
the built-in embedding (`axtui.cache.semantic.BuiltinEmbedder`). Measured
per distinct text (nothing remembered by text; words seen before are,
as on a running server), beside the first implementation frozen in
tests/cache/test_text_reference.py (the baseline, same run, outputs
checked equal) on

- `benchmarks/prompts.py`'s everyday prompts (about 14 words, no digits),
- the standard workload's texts (`Workload(seed=11).take(2000)`, distinct),
- one text of 2,000 characters.

Target: features + embedding at least 2x faster than the baseline.

Run: ``python benchmarks/bench_text.py``
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from axtui.cache import text  # noqa: E402
from axtui.cache.guards import exact_signature, features  # noqa: E402
from axtui.cache.semantic import BuiltinEmbedder  # noqa: E402
from axtui.providers.sim.workload import Workload  # noqa: E402
from benchmarks.prompts import prompt  # noqa: E402
from tests.cache import test_text_reference as ref  # noqa: E402


def per_text_us(
    texts: list[str], works: tuple[Callable[[str], object], ...], forget: Callable[[], None]
) -> list[float]:
    """Each work's best run over ``texts``, in microseconds per text (CPU time; runs alternate; remembered texts forgotten)."""
    best = [float("inf")] * len(works)
    for _ in range(max(9, 3000 // len(texts))):
        for i, work in enumerate(works):
            forget()
            start = time.process_time()
            for t in texts:
                work(t)
            best[i] = min(best[i], time.process_time() - start)
    return [b / len(texts) * 1e6 for b in best]


def measure(name: str, texts: list[str]) -> None:
    emb = BuiltinEmbedder()
    old_emb = ref.RefEmbedder()

    def forget() -> None:
        text.word_tuple.cache_clear()
        ref.ref_word_tuple.cache_clear()
        emb._memo.clear()
        old_emb._memo.clear()

    def new_both(t: str) -> None:
        exact_signature([features(t)])
        emb.embed_sync([t])

    def old_both(t: str) -> None:
        ref.ref_exact_signature([ref.ref_features(t)])
        old_emb.embed_sync([t])

    for t in texts:  # the same outputs, and every word seen once (as on a server that has run a while)
        assert features(t) == ref.ref_features(t), t
        assert emb.embed_sync([t])[0].tobytes() == old_emb.embed_sync([t])[0].tobytes(), t
    rows = [
        ("features", lambda t: features(t), ref.ref_features),
        ("embedding", lambda t: emb.embed_sync([t]), lambda t: old_emb.embed_sync([t])),
        ("both + signature", new_both, old_both),
    ]
    print(f"{name} ({len(texts)} distinct texts, {sum(map(len, texts)) / len(texts):.0f} characters on average)")
    for label, new, old in rows:
        before, after = per_text_us(texts, (old, new), forget)
        print(f"  {label:18s} baseline {before:8.1f} us/text   now {after:8.1f} us/text   {before / after:4.1f}x")


def main() -> None:
    workload = list(dict.fromkeys(w.request.messages[-1].text() for w in Workload(seed=11).take(2000)))
    long_text = " ".join(workload)[:2000]
    measure("benchmarks/prompts.py", [prompt(i) for i in range(3000)])
    measure("standard workload", workload)
    measure("2,000 characters", [long_text])


if __name__ == "__main__":
    main()
