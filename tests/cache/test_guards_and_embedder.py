"""Guards and the built-in embedder: near-duplicates match, near-misses never do."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axtui.cache.guards import GuardFeatures, features, mismatch, turns_mismatch
from axtui.cache.semantic import BuiltinEmbedder, ProviderEmbedder
from axtui.cache.text import words
from axtui.errors import ProviderError
from axtui.types import Caller

EMB = BuiltinEmbedder()


def cos(a: str, b: str) -> float:
    v = EMB.embed_sync([a, b])
    return float(v[0] @ v[1])


@pytest.mark.parametrize(
    ("a", "b", "why"),
    [
        ("What is the capital of France?", "What is the capital of Germany?", "named entities differ"),
        ("what is the capital of france", "what is the capital of germany", "named entities differ"),
        ("Convert 100 Fahrenheit to Celsius", "Convert 200 Fahrenheit to Celsius", "numbers differ"),
        ("Summarize Hamlet in three sentences", "Summarize Hamlet in 5 sentences", "numbers differ"),
        ("Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?", "negation differs"),
        ("Why do cats like water?", "Why don't cats like water?", "negation differs"),
        ("How many days in a leap year?", "How many days in a non leap year?", "negation differs"),
        ("What does the 'ls' command do?", "What does the 'rm' command do?", "named entities differ"),
        ("Explain the causes of World War I", "Explain the causes of World War II", "named entities differ"),
        ("Who wrote Pride and Prejudice?", "Who wrote War and Peace?", "named entities differ"),
        # Typed without the apostrophe, a negation all the same.
        ("Dont use recursion: write factorial in python", "Use recursion: write factorial in python",
         "negation differs"),
        ("doesnt python support tail call optimisation", "does python support tail call optimisation",
         "negation differs"),
        ("isnt it safe to fly", "is it safe to fly", "negation differs"),
        # The same numbers, signed or arranged differently.
        ("What is -5 squared?", "What is 5 squared?", "numbers differ"),
        ("Set the thermostat to -10 degrees", "Set the thermostat to 10 degrees", "numbers differ"),
        ("What is 3 - 5?", "What is 3 + 5?", "numbers differ"),
        ("Is 3 > 5?", "Is 3 < 5?", "numbers differ"),
        ("What is 3 - 5?", "What is 5 - 3?", "numbers differ"),
        ("What day of the week was 2024-01-02?", "What day of the week was 2024-02-01?", "numbers differ"),
        ("What is 2^10?", "What is 10^2?", "numbers differ"),
    ],
)
def test_guards_tell_near_misses_apart(a: str, b: str, why: str) -> None:
    assert mismatch(features(a), features(b)) == why
    assert mismatch(features(b), features(a)) == why


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is the capital of France?", "what is the capital of france"),
        ("WHY IS THE SKY BLUE?", "Why is the sky blue?"),
        ("Summarize Hamlet in three sentences", "summarize hamlet in 3 sentences"),
        ("Can't dogs eat grapes?", "Cannot dogs eat grapes"),
        ("In Python, how do I read a file?", "How do I read a file in Python?"),
        ("Price is 1,000 dollars", "price is 1000 dollars"),
        ("Dont panic, what is a monad?", "Don't panic: what is a monad?"),
        ("What is 2.50 + 1?", "what is 2.5+1"),
        ("Explain the state-of-the-art in 5 points", "Explain the state of the art in 5 points"),
    ],
)
def test_guards_let_near_duplicates_through(a: str, b: str) -> None:
    assert mismatch(features(a), features(b)) is None


def test_digits_of_any_script_are_numbers() -> None:
    assert mismatch(features("Buy \u0663 apples"), features("Buy 3 apples")) is None  # Arabic-Indic 3
    # Ethiopic digits are digits without a decimal value: compared as written, never an error.
    assert mismatch(features("Buy \u1369 apples"), features("Buy \u136a apples")) == "numbers differ"
    assert mismatch(features("Buy \u1369 apples"), features("Buy \u1369 apples")) is None


def test_conversations_are_guarded_turn_by_turn() -> None:
    a = [features("You answer in French."), features("What is 2 + 2?")]
    b = [features("You answer in German."), features("What is 2 + 2?")]
    assert turns_mismatch(a, b) == "turn 1: named entities differ"
    assert turns_mismatch(a, a[:1]) == "different number of turns"
    assert turns_mismatch(a, a) is None


def test_guard_features_keep_no_text_and_survive_json() -> None:
    f = features("Send 250 dollars to Alice in Paris, not Bob")
    assert GuardFeatures.from_json(f.to_json()) == f
    assert "Alice" not in str(f.to_json()) and "250" not in str(f.to_json())
    with pytest.raises(ValueError):
        GuardFeatures.from_json({"not": "a list"})


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is the capital of France?", "what is the capital of france"),
        ("Please explain how vaccines work.", "Explain how vaccines work"),
        ("Hey, could you list three uses of baking soda?", "List three uses of baking soda."),
        ("What   is  a   closure in JavaScript?", "What is a closure in JavaScript?"),
        ("What's the time complexity of binary search?", "whats the time complexity of binary search"),
    ],
)
def test_near_duplicates_embed_the_same(a: str, b: str) -> None:
    assert cos(a, b) > 0.999


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("In Python, how do I read a file line by line?", "How do I read a file line by line in Python?"),
        ("When cooking rice, how much water should I use?", "How much water should I use when cooking rice?"),
    ],
)
def test_reordered_clauses_stay_above_the_default_threshold(a: str, b: str) -> None:
    assert cos(a, b) >= 0.9


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I sort a list in Python?", "How do I sort a dict in Python?"),
        ("How do I create a branch in Git?", "How do I delete a branch in Git?"),
        ("Write a poem about the sea", "Write a story about the sea"),
        ("Dog bites man: write a headline", "Man bites dog: write a headline"),
    ],
)
def test_different_questions_in_similar_words_stay_below_the_default_threshold(a: str, b: str) -> None:
    assert cos(a, b) < 0.9


def test_vectors_are_unit_length_and_the_same_in_every_instance() -> None:
    v = EMB.embed_sync(["hello world, how are you", "x"])
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(BuiltinEmbedder().embed_sync(["hello world, how are you"])[0], v[0])
    assert np.all(EMB.embed_sync(["please, thanks!"])[0] == 0)  # only filler: no meaning to compare
    with pytest.raises(ValueError, match="power of two"):
        BuiltinEmbedder(dim=100)


sentence = st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "river", "stone", "cloud", "seven", "paris", "engine"]),
                    min_size=2, max_size=8).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(sentence, st.randoms(use_true_random=False))
def test_case_punctuation_and_spacing_never_change_the_vector(text: str, rnd: object) -> None:
    import random

    assert isinstance(rnd, random.Random)
    noisy = "".join(c.upper() if rnd.random() < 0.3 else c for c in text)
    noisy = noisy.replace(" ", rnd.choice([" ", "  ", " , ", "\t"])) + rnd.choice(["?", "!!", ".", ""])
    assert cos(text, noisy) > 0.999
    assert mismatch(features(text), features(noisy)) is None


@settings(deadline=None)
@given(sentence, st.integers(0, 10_000), st.integers(0, 10_000))
def test_different_numbers_are_always_different_questions(text: str, x: int, y: int) -> None:
    verdict = mismatch(features(f"{text} {x}"), features(f"{text} {y}"))
    assert (verdict is None) == (x == y)


@pytest.mark.parametrize("text", ["0\u328aAa", "(#14) Tell me something surprising about volcanoes."])
def test_a_text_whose_names_fold_away_still_matches_itself(text: str) -> None:
    # "㊊" folds to a letter that joins "Aa"; "Tell me" is a filler the words leave out.
    assert mismatch(features(text), features(text)) is None


@settings(deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_mismatch_is_symmetric_and_a_text_matches_itself(a: str, b: str) -> None:
    fa, fb = features(a), features(b)
    assert mismatch(fa, fa) is None
    assert mismatch(fa, fb) == mismatch(fb, fa)


def test_words_normalise_case_punctuation_contractions_and_fillers() -> None:
    assert words("Hey, could you tell me: what's the capital of FRANCE?!") == ["what", "is", "the", "capital", "of",
                                                                              "france"]
    assert words("I don't know") == ["i", "do", "not", "know"]


async def test_the_provider_embedder_remembers_texts_and_checks_shapes() -> None:
    calls: list[list[str]] = []

    async def embed(texts: list[str], caller: Caller) -> list[list[float]]:
        calls.append(texts)
        return [[float(len(t)), 1.0] for t in texts]

    e = ProviderEmbedder("emb", embed)
    v = await e.embed(["ab", "abc", "ab"])
    assert v.shape == (3, 2) and np.allclose(np.linalg.norm(v, axis=1), 1)
    await e.embed(["abc", "abcd"])
    assert calls == [["ab", "abc"], ["abcd"]]  # each text is paid for once

    async def short(texts: list[str], caller: Caller) -> list[list[float]]:
        return [[1.0]]

    with pytest.raises(ProviderError, match="returned 1 vectors for 2 inputs"):
        await ProviderEmbedder("emb", short).embed(["a", "b"])
