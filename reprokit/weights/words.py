"""The words that answer "why are the weights different?" from an alignment (pure).

The alignment is :class:`~reprokit.weights.matching.Alignment`.
"""

from __future__ import annotations

from reprokit.weights.matching import Alignment
from reprokit.weights.similarity import TWIN

SAME_FEATURES = 0.9
"""Mean CKA from which two networks learned nearly the same features."""
SIMILAR_FEATURES = 0.6
"""Mean CKA from which their features are similar (below: different)."""


def features(cka: float, untrained: float | None, twins: tuple[int, int] | None) -> str:
    """What a mean linear CKA says about two networks' hidden layers, read against two untrained ones.

    ``twins`` is (units with a near-twin, units matched), if measured.
    """
    if untrained is not None and cka <= untrained + 0.02:
        return "the two networks are no more alike than two untrained ones"
    if cka >= SAME_FEATURES:
        if twins is not None and twins[1] and twins[0] < twins[1] / 2:
            return "the two networks represent the data nearly the same way, spread differently over their units"
        return "the two networks learned nearly the same features, in another order"
    if cka >= SIMILAR_FEATURES:
        return "the two networks learned similar but not the same features"
    return "the two networks learned different features"


def order_and_solution(a: Alignment) -> str:
    """One sentence: the distance before and after matching units, and what the order explains."""
    if not a.aligned_layers:
        return (
            f"No hidden layer could be aligned ({_unsupported(a)}), so the relative L2 distance "
            f"{a.before:.2f} mixes the order of the units with other solutions."
        )
    explained = a.explained
    share = f"{explained:.0%}" if explained is not None else "none"
    rest = "the rest is a different solution training found" if a.after > 0 else "nothing else differs"
    return (
        f"After matching hidden units, the weights differ by {a.after:.2f} instead of {a.before:.2f} "
        f"(relative L2): the order of the hidden units explains {share} of the squared distance, {rest}."
    )


def function(a: Alignment) -> str:
    """One sentence: CKA (against untrained networks), near-twin units (empty when nothing was measured on data)."""
    pair = twins(a)
    parts = []
    if a.cka is not None:
        reference = (
            f", {a.untrained_cka:.2f} for two untrained networks of this shape" if a.untrained_cka is not None else ""
        )
        parts.append(f"hidden layers' linear CKA {a.cka:.2f}{reference}: {features(a.cka, a.untrained_cka, pair)}")
    if pair is not None:
        parts.append(f"hidden units with a near-twin (activations correlating ≥ {TWIN}): {pair[0]} of {pair[1]}")
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def why(a: Alignment, model: str | None = None) -> str:
    """The short answer, for a finding's evidence: distances before and after matching, and CKA."""
    owner = f" of {model}" if model else ""
    if not a.aligned_layers:
        text = f"No hidden layer{owner} could be aligned ({_unsupported(a)})."
    else:
        explained = a.explained
        share = f"{explained:.0%}" if explained is not None else "none"
        text = (
            f"After matching hidden units, the weights{owner} differ by {a.after:.2f} instead of {a.before:.2f} "
            f"(relative L2; the order of the units explains {share} of the squared distance, the rest is "
            "another solution)."
        )
    if a.cka is not None:
        reference = f" against {a.untrained_cka:.2f} for untrained networks" if a.untrained_cka is not None else ""
        words = features(a.cka, a.untrained_cka, twins(a))
        text += f" Hidden layers' linear CKA {a.cka:.2f}{reference}: {words}."
    return text


def twins(a: Alignment) -> tuple[int, int] | None:
    """Matched hidden units with a near-twin, and matched units in all (None: no activations)."""
    matched = [layer.matched for layer in a.layers if layer.matched is not None]
    return (sum(m.twins for m in matched), sum(m.units for m in matched)) if matched else None


def _unsupported(a: Alignment) -> str:
    shown = [f"{layer.layer} ({layer.kind})" for layer in a.unsupported[:3]]
    more = len(a.unsupported) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def seeds_features(cka: float, untrained: float | None) -> str:
    """What the mean pairwise CKA of several seeds' hidden layers says, read against untrained networks."""
    if untrained is not None and cka <= untrained + 0.02:
        return "seeds find different solutions, no more alike than untrained networks"
    if cka >= SAME_FEATURES:
        return "every seed learns nearly the same representation of the data"
    if cka >= SIMILAR_FEATURES:
        return "seeds learn similar but not the same features"
    return "seeds find different solutions"
