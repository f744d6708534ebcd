"""The standard workload: realistic traffic for demos, load runs and benchmarks.

Several users ask several models. Popular questions repeat with a Zipf
distribution (so a cache has something to do), some come back as
near-duplicates (case, punctuation, filler words, reordered clauses), some
are near-misses that must NOT be answered from the cache (another number,
another country, a negation), the rest are unique; a few prompts carry a
long document, and a share of calls stream. Deterministic for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from axtui.types import ChatRequest

__all__ = ["QUESTIONS", "WorkItem", "Workload"]

Kind = Literal["popular", "paraphrase", "near_miss", "unique", "long"]

#: Base questions; popular traffic draws from these with a Zipf law.
QUESTIONS: tuple[str, ...] = (
    "What is the capital of France?",
    "Explain how a TCP three-way handshake works.",
    "Write a haiku about autumn leaves.",
    "How do I reverse a list in Python?",
    "What are the health benefits of green tea?",
    "Summarise the plot of Hamlet in two sentences.",
    "What is the difference between a process and a thread?",
    "How many days are there in a leap year?",
    "Give me three tips for a job interview.",
    "What causes the seasons on Earth?",
    "Translate 'good morning' into Spanish.",
    "What is a closure in JavaScript?",
    "How does compound interest work?",
    "Explain what SQLite WAL mode does.",
    "What is the boiling point of water at sea level?",
    "Suggest a name for a coffee shop.",
    "How do vaccines train the immune system?",
    "What is the time complexity of binary search?",
    "Explain recursion to a ten year old.",
    "What is the tallest mountain in Africa?",
    "How do I center a div with CSS?",
    "Write a short thank-you note to a colleague.",
    "Why is the sky blue?",
    "What is the Pythagorean theorem?",
    "List five fruits that are high in vitamin C.",
    "What does HTTP status code 429 mean?",
    "How do I make a git branch?",
    "What is the population of Tokyo roughly?",
    "Explain the CAP theorem briefly.",
    "What is the speed of light in a vacuum?",
)

#: Pairs (a, b) that look alike but ask different things.
NEAR_MISSES: tuple[tuple[str, str], ...] = (
    ("What is the capital of France?", "What is the capital of Germany?"),
    ("How many days are there in a leap year?", "How many days are there in a non leap year?"),
    ("What is the boiling point of water at sea level?", "What is the freezing point of water at sea level?"),
    ("What is the tallest mountain in Africa?", "What is the tallest mountain in Europe?"),
    ("How does compound interest work?", "How does simple interest work?"),
    ("Give me three tips for a job interview.", "Give me five tips for a job interview."),
    ("What does HTTP status code 429 mean?", "What does HTTP status code 503 mean?"),
    ("Explain recursion to a ten year old.", "Explain recursion to a five year old."),
)

_FILLERS = ("please", "could you tell me", "quick question:", "hey,", "I was wondering,")
_UNIQUE_TOPICS = (
    "gardening", "rust lifetimes", "baking bread", "black holes", "tax forms", "chess openings", "jazz history",
    "kubernetes", "sourdough", "volcanoes", "poetry meter", "bird migration", "espresso", "linear algebra",
)
_UNIQUE_ASKS = (
    "Tell me something surprising about {t}.",
    "What should a beginner know about {t}?",
    "Write two sentences about {t} and {u}.",
    "Compare {t} with {u} in one paragraph.",
)
_DOC = (
    "The quarterly report covers revenue, costs and headcount across every region. "
    "Revenue grew in the north while costs rose in the south because of new offices. "
)


@dataclass(slots=True)
class WorkItem:
    """One call of the workload."""

    user: str
    request: ChatRequest
    stream: bool
    kind: Kind


class Workload:
    """An endless, seeded stream of `WorkItem` calls.

    Args:
        seed: makes the sequence repeatable.
        users: how many distinct users call.
        models: model names or aliases to spread calls over, with weights.
        stream_share: the fraction of calls that stream.
    """

    def __init__(
        self,
        seed: int = 0,
        users: int = 5,
        models: dict[str, float] | None = None,
        stream_share: float = 0.2,
    ) -> None:
        self.rng = random.Random(seed)
        self.users = [f"user-{i + 1}" for i in range(max(1, users))]
        self.models = models or {"fast": 0.45, "smart": 0.25, "cheap": 0.3}
        self.stream_share = stream_share
        weights = [1 / (rank + 1) ** 1.1 for rank in range(len(QUESTIONS))]
        total = sum(weights)
        self._zipf = [w / total for w in weights]
        self._counter = 0
        # Each user keeps a preferred model, as real applications do.
        names, w = list(self.models), list(self.models.values())
        self._user_model = {u: self.rng.choices(names, w)[0] for u in self.users}

    def __iter__(self) -> Iterator[WorkItem]:
        while True:
            yield self.next()

    def take(self, n: int) -> list[WorkItem]:
        """The next ``n`` calls."""
        return [self.next() for _ in range(n)]

    def next(self) -> WorkItem:
        """The next call."""
        rng = self.rng
        self._counter += 1
        user = rng.choice(self.users)
        roll = rng.random()
        kind: Kind
        if roll < 0.55:
            kind, text = "popular", self._popular()
        elif roll < 0.70:
            kind, text = "paraphrase", self._paraphrase(self._popular())
        elif roll < 0.75:
            kind, text = "near_miss", rng.choice(NEAR_MISSES)[1]
        elif roll < 0.80:
            kind, text = "long", f"{_DOC * rng.randint(20, 60)}\nQuestion {self._counter}: what grew, and where?"
        else:
            kind, text = "unique", self._unique()
        model = self._user_model[user] if rng.random() < 0.8 else rng.choices(list(self.models), list(self.models.values()))[0]
        max_tokens = rng.choice((None, 64, 128, 256))
        request = ChatRequest.model_validate(
            {
                "model": model,
                "messages": [{"role": "user", "content": text}],
                "max_tokens": max_tokens,
            }
        )
        return WorkItem(user=user, request=request, stream=rng.random() < self.stream_share, kind=kind)

    def _popular(self) -> str:
        return self.rng.choices(QUESTIONS, self._zipf)[0]

    def _paraphrase(self, text: str) -> str:
        rng = self.rng
        choice = rng.randrange(4)
        if choice == 0:
            return text.lower()
        if choice == 1:
            return f"{rng.choice(_FILLERS)} {text[0].lower()}{text[1:]}"
        if choice == 2:
            return text.rstrip("?.!") + ("??" if text.endswith("?") else "!")
        return "  ".join(text.split(" "))

    def _unique(self) -> str:
        rng = self.rng
        t, u = rng.sample(_UNIQUE_TOPICS, 2)
        return rng.choice(_UNIQUE_ASKS).format(t=t, u=u) + f" (#{self._counter})"
