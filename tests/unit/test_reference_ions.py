"""The default reference ions' m/z agree with their elemental formulas to 0.1 mDa."""
from __future__ import annotations

import pytest

from ims import reference_ions

MASS = {"C": 12.0, "H": 1.00782503, "N": 14.00307401, "O": 15.99491462, "P": 30.97376200,
        "Na": 22.98976928, "K": 38.96370668}
PROTON, ELECTRON = 1.00727646, 0.00054858
FORMULA = {  # neutral molecule, and what the ion adds to it
    "DHB [M+H-H2O]+": ({"C": 7, "H": 4, "O": 3}, PROTON),
    "CHCA [M+H]+": ({"C": 10, "H": 7, "N": 1, "O": 3}, PROTON),
    "PC 32:0 [M+H]+": ({"C": 40, "H": 80, "N": 1, "O": 8, "P": 1}, PROTON),
    "PC 34:1 [M+H]+": ({"C": 42, "H": 82, "N": 1, "O": 8, "P": 1}, PROTON),
    "PC 32:0 [M+K]+": ({"C": 40, "H": 80, "N": 1, "O": 8, "P": 1}, MASS["K"] - ELECTRON),
    "PC 34:1 [M+Na]+": ({"C": 42, "H": 82, "N": 1, "O": 8, "P": 1}, MASS["Na"] - ELECTRON),
    "PC 34:1 [M+K]+": ({"C": 42, "H": 82, "N": 1, "O": 8, "P": 1}, MASS["K"] - ELECTRON),
    "9-AA [M-H]-": ({"C": 13, "H": 10, "N": 2}, -PROTON),
    "FA 16:0 [M-H]-": ({"C": 16, "H": 32, "O": 2}, -PROTON),
    "FA 18:1 [M-H]-": ({"C": 18, "H": 34, "O": 2}, -PROTON),
    "PE 38:4 [M-H]-": ({"C": 43, "H": 78, "N": 1, "O": 8, "P": 1}, -PROTON),
    "PI 38:4 [M-H]-": ({"C": 47, "H": 83, "O": 13, "P": 1}, -PROTON),
}


@pytest.mark.parametrize("ion", reference_ions.POSITIVE + reference_ions.NEGATIVE, ids=lambda ion: ion.name)
def test_each_reference_mz_is_its_formula_mass(ion):
    atoms, charge_carrier = FORMULA[ion.name]
    assert ion.mz == pytest.approx(sum(MASS[a] * n for a, n in atoms.items()) + charge_carrier, abs=1e-4)


def test_defaults_follow_polarity():
    assert reference_ions.defaults("positive") == reference_ions.POSITIVE
    assert reference_ions.defaults("negative") == reference_ions.NEGATIVE
    assert set(reference_ions.defaults("")) == set(reference_ions.POSITIVE + reference_ions.NEGATIVE)
