"""What the doctor reports: a :class:`Finding` per problem, ordered.

A finding names its ``kind`` (one of :data:`KINDS`), how bad it is
(``severity``: "error" — training cannot work like this; "warning" — it
probably hurts; "info" — worth knowing), where (``layer``, ``blob``, the
``iteration``), the numbers that show it (``evidence``) and one sentence
saying what to change (``fix``).

Order: most severe first; within a severity, causes before the symptoms they
produce (raw 0–255 pixels make a softmax saturate and the loss go NaN, so
``input_scale`` comes before ``saturated_softmax`` and ``nonfinite``): the
causes in the order of :data:`KINDS`, then the symptoms in the order they
appeared (iteration), so that they read as the chain they are.
"""
from dataclasses import dataclass, field
from typing import Optional

SEVERITIES = ("error", "warning", "info")

# Every kind, causes first: a kind early in this tuple can explain the ones
# after it (an unscaled input or a too-high rate explain NaNs, NaNs explain a
# saturated softmax, dead ReLUs explain vanishing gradients and a constant
# output).
KINDS = (
    "label_range",
    "weights_unmatched",
    "batchnorm_phase",
    "input_scale",
    "frozen",
    "lr_too_high",
    "dead_relu",
    "nonfinite",
    "saturated_softmax",
    "exploding_gradient",
    "vanishing_gradient",
    "constant_output",
)


@dataclass
class Finding:
    """One problem the doctor found.

    Attributes:
        kind: one of :data:`KINDS`.
        severity: "error", "warning" or "info".
        layer: the layer concerned (None when it is the whole net).
        blob: the blob concerned, if any.
        iteration: the training iteration the evidence comes from (None for
            static checks).
        evidence: the numbers, name -> value (JSON-friendly).
        fix: one sentence.
        message: one line saying what was seen.
        order: the layer's index in the net, to order findings of one kind.
    """
    kind: str
    severity: str
    layer: Optional[str]
    blob: Optional[str]
    iteration: Optional[int]
    evidence: dict
    fix: str
    message: str
    order: int = field(default=0, repr=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_json(self):
        """The finding as the ``--json`` report writes it."""
        return {"kind": self.kind, "severity": self.severity,
                "layer": self.layer, "blob": self.blob,
                "iteration": self.iteration,
                "evidence": _plain(self.evidence), "fix": self.fix,
                "message": self.message}


# The kinds that name a cause; the others are symptoms.
CAUSES = KINDS[:KINDS.index("dead_relu") + 1]


def ordered(findings):
    """``findings`` most severe first, causes before symptoms."""
    def key(f):
        it = f.iteration if f.iteration is not None else -1
        kind = KINDS.index(f.kind)
        if f.kind in CAUSES:
            return (SEVERITIES.index(f.severity), 0, kind, it, f.order)
        return (SEVERITIES.index(f.severity), 1, it, kind, f.order)
    return sorted(findings, key=key)


def healthy(findings):
    """True when no finding is a warning or an error."""
    return not any(f.severity in ("error", "warning") for f in findings)


def report_json(findings):
    """``{"findings": [...], "healthy": bool}`` for ``kaffe doctor --json``."""
    findings = ordered(findings)
    return {"findings": [f.to_json() for f in findings],
            "healthy": healthy(findings)}


def _plain(value):
    """Evidence with NumPy scalars and non-finite floats made JSON-safe
    (NaN and ±Inf become the strings "nan", "inf", "-inf")."""
    import math
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float(f"{value:.6g}")
    return value
