"""Reference ions for mass accuracy: ions a MALDI imaging run of tissue usually shows (matrix
clusters and abundant membrane lipids), by polarity; the theoretical m/z are monoisotopic, from
the elemental formulas (C 12, H 1.00782503, N 14.00307401, O 15.99491462, P 30.97376200, Na
22.98976928, K 38.96370668) less or plus a proton (1.00727646) or with the cation's mass less an
electron's.

A lab passes its own list per parameter set (lock masses, its matrix, known lipids); these are the
defaults and what the demo data carries.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReferenceIon:
    """One ion whose m/z is known exactly."""
    name: str
    mz: float


POSITIVE = (
    ReferenceIon("DHB [M+H-H2O]+", 137.0233),
    ReferenceIon("CHCA [M+H]+", 190.0499),
    ReferenceIon("PC 32:0 [M+H]+", 734.5694),
    ReferenceIon("PC 34:1 [M+H]+", 760.5851),
    ReferenceIon("PC 32:0 [M+K]+", 772.5253),
    ReferenceIon("PC 34:1 [M+Na]+", 782.5670),
    ReferenceIon("PC 34:1 [M+K]+", 798.5410),
)

NEGATIVE = (
    ReferenceIon("9-AA [M-H]-", 193.0771),
    ReferenceIon("FA 16:0 [M-H]-", 255.2330),
    ReferenceIon("FA 18:1 [M-H]-", 281.2486),
    ReferenceIon("PE 38:4 [M-H]-", 766.5392),
    ReferenceIon("PI 38:4 [M-H]-", 885.5499),
)


def defaults(polarity: str) -> tuple[ReferenceIon, ...]:
    """The default reference ions for 'positive' or 'negative' polarity (both when unknown)."""
    return {"positive": POSITIVE, "negative": NEGATIVE}.get(polarity, POSITIVE + NEGATIVE)
