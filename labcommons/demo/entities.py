"""The demo commons: programs, projects and their entities as submission dicts, from a seed.

Entities follow the default dictionary (metadata/dictionary/default). Links name parents by
submitter_id within the same project; each project's list is in submission order (parents
first). Data files are not made here: the orchestration writes the image `imaging` names for
every measurement and builds their data_file entities from the written files.

Every measurement gets an image shaped by its acquisition (raster, pixel size, polarity, m/z
range, resolving power, matrix); continuous and processed, profile and centroid are mixed. In
each project one measurement of each flaw (missing pixels, +10 ppm drift, truncated ibd) is
deliberately broken. `qc_at_start` names the few measurements whose QC the demo launches at
once (one of each kind of image and each flaw); `broken_pair` is a registration the portal must
refuse (an imzML with another image's ibd).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np

from labcommons.demo.images import FLAWS, ImageSpec

# Counts at scale 1.0, over all projects.
TARGETS = {"case": 200, "sample": 400, "experiment": 30, "measurement": 600}
LASER_IONISATION = ("MALDI", "MALDI-2", "LA-ICP")
MATRIX_IONISATION = ("MALDI", "MALDI-2")
# Rasters (width, height) and how often each occurs: small, so 600 pairs stay quick to write.
RASTERS = (((5, 4), 0.25), ((6, 5), 0.3), ((8, 6), 0.25), ((10, 8), 0.15), ((16, 12), 0.05))
MISSING_PIXELS_RASTER = (12, 9)  # the lines of its middle third are gone
# (imzML mode, spectrum type) and how often each occurs
KINDS = ((("continuous", "profile"), 0.4), (("processed", "profile"), 0.2),
         (("processed", "centroid"), 0.3), (("continuous", "centroid"), 0.1))
BROKEN_PAIR = "broken-pair-demo"  # the measurement whose registration the portal must refuse


@dataclass(frozen=True)
class ImagingSpec:
    """A measurement's imzML/ibd pair: where it goes and how to simulate it."""
    project_id: str
    measurement: str  # the measurement's submitter_id
    image: ImageSpec


@dataclass(frozen=True)
class BrokenPair:
    """A registration that must be refused: the imzML of `image`, the ibd of `other` (another UUID)."""
    project_id: str
    values: dict      # the registration form's values
    image: ImageSpec
    other: ImageSpec


@dataclass
class DemoCommons:
    """Everything the demo submits, grouped the way it is submitted."""
    programs: list[dict]
    project_nodes: list[dict]
    projects: dict[str, list[dict]]
    imaging: list[ImagingSpec] = field(default_factory=list)
    qc_at_start: list[ImagingSpec] = field(default_factory=list)
    broken_pair: BrokenPair | None = None


@dataclass(frozen=True)
class _Profile:
    """What makes one demo project's cases and samples look like that project's."""
    program: str
    project_id: str
    code: str
    name: str
    summary: str
    species: str
    organs: tuple[str, ...]
    diagnoses: tuple[str, ...]
    goals: tuple[str, ...]
    strains: tuple[str, ...] = ()
    treatments: dict = field(default_factory=dict)  # diagnosis -> treatments given for it


PROGRAMS = (
    {"type": "program", "submitter_id": "HUMAN-ATLAS", "full_name": "Human Tissue Lipid Atlas",
     "summary": "Spatial lipid maps of healthy and diseased human organs.",
     "institution": "Institute for Spatial Omics", "funding_source": "Atlas Foundation AF-2021-117"},
    {"type": "program", "submitter_id": "RODENT-MODELS", "full_name": "Rodent Disease Models",
     "summary": "Imaging mass spectrometry of mouse and rat disease and toxicology models.",
     "institution": "Institute for Spatial Omics", "funding_source": "Preclinical Imaging Grant PIG-0042"},
)

PROFILES = (
    _Profile("HUMAN-ATLAS", "atlas-kidney", "ak", "Human kidney lipid atlas",
             "Lipid composition of renal cortex and medulla in health, ccRCC and CKD.", "human",
             ("kidney",), ("healthy", "clear cell renal cell carcinoma", "chronic kidney disease"),
             ("Map lipid heterogeneity across cortex and medulla",
              "Compare tumour and adjacent normal tissue", "Find lipid markers of fibrosis")),
    _Profile("HUMAN-ATLAS", "atlas-liver", "al", "Human liver lipid atlas",
             "Zonation of hepatic lipids in normal, steatotic and cancerous liver.", "human",
             ("liver",), ("healthy", "non-alcoholic fatty liver disease", "hepatocellular carcinoma"),
             ("Map periportal to pericentral lipid zonation", "Characterise steatotic droplets",
              "Compare tumour margin to background liver")),
    _Profile("RODENT-MODELS", "mouse-brain", "mb", "Mouse brain ageing and disease",
             "Brain lipid changes with age, amyloid pathology and ischaemic stroke.", "mouse",
             ("brain",), ("healthy", "Alzheimer's disease model", "ischaemic stroke model"),
             ("Localise lipids around amyloid plaques", "Follow lipid changes in the peri-infarct zone",
              "Build a reference of regional brain lipids"),
             strains=("C57BL/6J",), treatments={"ischaemic stroke model": ("tMCAO 60 min",)}),
    _Profile("RODENT-MODELS", "rat-toxicology", "rt", "Rat kidney and liver toxicology",
             "Spatial drug and metabolite distribution after nephro- and hepatotoxic dosing.", "rat",
             ("kidney", "liver"), ("healthy", "drug-induced kidney injury", "drug-induced liver injury"),
             ("Map drug distribution in kidney after dosing", "Localise injury-associated lipids",
              "Map trace metals in damaged tissue"),
             strains=("Sprague Dawley", "Wistar"),
             treatments={"healthy": ("vehicle",),
                         "drug-induced kidney injury": ("cisplatin 7 mg/kg i.p.",
                                                        "gentamicin 100 mg/kg s.c."),
                         "drug-induced liver injury": ("acetaminophen 300 mg/kg p.o.",)}),
)

PROJECT_DETAILS = {
    "atlas-kidney": ("Dr. Maria Keller", "open"),
    "atlas-liver": ("Dr. Samuel Osei", "controlled"),
    "mouse-brain": ("Dr. Yuki Tanaka", "open"),
    "rat-toxicology": ("Dr. Lena Novak", "controlled"),
}

TISSUES = {
    "kidney": ("cortex", "medulla", "papilla", "whole section"),
    "liver": ("right lobe", "left lobe", "caudate lobe"),
    "brain": ("sagittal section", "coronal section", "hippocampus", "cerebellum"),
}

# (protocol, ionisation, polarity or None for either); MALDI is listed most, as in most IMS labs.
PROTOCOLS = (
    ("MALDI lipid imaging, positive mode v3.1", "MALDI", "positive"),
    ("MALDI lipid imaging, positive mode v3.1", "MALDI", "positive"),
    ("MALDI lipid imaging, negative mode v2.4", "MALDI", "negative"),
    ("MALDI-2 post-ionisation lipidomics v1.0", "MALDI-2", "positive"),
    ("DESI lipid profiling v2.0", "DESI", None),
    ("ToF-SIMS high-resolution imaging v1.2", "SIMS", None),
    ("LA-ICP-MS trace metal mapping v1.5", "LA-ICP", "positive"),
)

# ionisation -> ((instrument, lowest and highest resolving power), ...)
INSTRUMENTS = {
    "MALDI": (("timsTOF fleX", 40000, 65000), ("rapifleX", 15000, 30000),
              ("Orbitrap Exploris", 120000, 240000), ("Synapt G2-Si", 20000, 40000)),
    "MALDI-2": (("timsTOF fleX", 40000, 65000),),
    "DESI": (("Synapt G2-Si", 20000, 40000), ("Xevo G2-XS", 20000, 40000),
             ("Orbitrap Exploris", 120000, 240000)),
    "SIMS": (("TOF.SIMS 5", 10000, 16000), ("J105 3D Chemical Imager", 8000, 12000)),
    "LA-ICP": (("Agilent 8900 ICP-QQQ", 300, 500),),
}

PIXEL_SIZES_UM = {"MALDI": (10, 20, 30, 50, 100), "MALDI-2": (5, 10, 20), "DESI": (50, 75, 100, 150),
                  "SIMS": (0.5, 1, 2, 5), "LA-ICP": (5, 10, 25, 50)}

MASS_RANGES = {"MALDI": ((100, 150, 300, 400), (1000, 1200, 1500, 2000)),
               "MALDI-2": ((150, 300, 400), (1000, 1200)),
               "DESI": ((50, 100, 150, 200), (1000, 1200, 1500)),
               "SIMS": ((1, 5), (1000, 1200, 1500)),
               "LA-ICP": ((6, 7), (208, 238))}

OPERATORS = ("A. Novak", "J. Chen", "P. Moreau", "S. Okafor", "L. Fischer", "R. Iyer", "M. Santos")
MATRICES = (("DHB", 0.3), ("CHCA", 0.15), ("9-AA", 0.1), ("DAN", 0.15), ("none", 0.3))
EMBEDDINGS = (("gelatin", 0.35), ("CMC", 0.35), ("OCT", 0.15), ("none", 0.15))


def demo_commons(seed: int = 7, scale: float = 1.0) -> DemoCommons:
    """The demo's programs, projects and entities; the same seed and scale give the same commons."""
    rng = np.random.default_rng(seed)
    shares = {kind: _split(round(total * scale), len(PROFILES)) for kind, total in TARGETS.items()}
    projects = {profile.project_id: _project_entities(profile, {k: v[i] for k, v in shares.items()}, rng)
                for i, profile in enumerate(PROFILES)}
    imaging = [spec for pid, entities in projects.items() for spec in _imaging_specs(pid, entities, rng)]
    return DemoCommons(programs=[dict(p) for p in PROGRAMS],
                       project_nodes=[_project_node(p) for p in PROFILES],
                       projects=projects, imaging=imaging, qc_at_start=_qc_at_start(imaging),
                       broken_pair=_broken_pair(imaging[0], projects, rng))


def _split(total: int, parts: int) -> list[int]:
    """total shared as evenly as possible over parts, each at least 1."""
    base, extra = divmod(total, parts)
    return [max(1, base + (1 if i < extra else 0)) for i in range(parts)]


def _project_node(profile: _Profile) -> dict:
    """The project node, linked to its program."""
    investigator, access = PROJECT_DETAILS[profile.project_id]
    return {"type": "project", "submitter_id": profile.project_id,
            "programs": {"submitter_id": profile.program},
            "name": profile.name, "summary": profile.summary,
            "principal_investigator": investigator, "institution": "Institute for Spatial Omics",
            "start_date": "2022-03-01", "data_access": access,
            "keywords": ["imaging mass spectrometry", profile.species, *profile.organs]}


def _project_entities(profile: _Profile, counts: dict[str, int], rng: np.random.Generator) -> list[dict]:
    """One project's cases, samples, experiments and measurements, parents before children."""
    cases = [_case(profile, i + 1, rng) for i in range(counts["case"])]
    samples = [_sample(profile, i + 1, cases[rng.integers(len(cases))], rng)
               for i in range(counts["sample"])]
    experiments = [_experiment(profile, i + 1, rng) for i in range(counts["experiment"])]
    measurements = [_measurement(profile, i + 1, experiments, samples, rng)
                    for i in range(counts["measurement"])]
    return cases + samples + experiments + measurements


def _case(profile: _Profile, number: int, rng: np.random.Generator) -> dict:
    """A donor or animal; rodents also get strain and genotype, dosed ones a treatment."""
    diagnosis = _pick(rng, profile.diagnoses)
    case = {"type": "case", "submitter_id": f"{profile.code}-case-{number:04d}",
            "species": profile.species, "sex": _pick(rng, ("female", "male")),
            "age_years": _age_years(profile.species, rng), "diagnosis": diagnosis}
    if profile.strains:
        case["strain"] = _pick(rng, profile.strains)
        case["genotype"] = "APP/PS1" if diagnosis == "Alzheimer's disease model" else "wild type"
    if diagnosis in profile.treatments:
        case["treatment"] = _pick(rng, profile.treatments[diagnosis])
    return case


def _age_years(species: str, rng: np.random.Generator) -> float:
    """Human donors in whole years; rodents from weeks, as their age is recorded."""
    if species == "human":
        return float(rng.integers(18, 89))
    weeks = rng.integers(8, 105) if species == "mouse" else rng.integers(8, 21)
    return round(float(weeks) / 52.0, 2)


def _sample(profile: _Profile, number: int, case: dict, rng: np.random.Generator) -> dict:
    """A tissue piece of case; FFPE tissue is paraffin-embedded and cut thinner than frozen."""
    organ = _pick(rng, profile.organs)
    preparation = _pick(rng, ("fresh frozen", "FFPE"), (0.7, 0.3))
    matrix = _weighted(rng, MATRICES)
    frozen = preparation == "fresh frozen"
    return {"type": "sample", "submitter_id": f"{profile.code}-sample-{number:04d}",
            "cases": {"submitter_id": case["submitter_id"]},
            "organ": organ, "tissue": _pick(rng, TISSUES[organ]), "preparation": preparation,
            "embedding": _weighted(rng, EMBEDDINGS) if frozen else "paraffin",
            "section_thickness_um": float(_pick(rng, (8, 10, 12, 14) if frozen else (4, 5))),
            "matrix": matrix,
            "matrix_application": "none" if matrix == "none" else _pick(
                rng, ("sprayer", "sublimation", "spotting"), (0.7, 0.2, 0.1)),
            "weight_mg": round(float(rng.uniform(5, 250)), 1),
            "collection_date": _date(rng, date(2021, 1, 1), 1400)}


def _experiment(profile: _Profile, number: int, rng: np.random.Generator) -> dict:
    """An experiment running one of PROTOCOLS towards one of the project's goals."""
    protocol = _pick(rng, PROTOCOLS)[0]
    experiment = {"type": "experiment", "submitter_id": f"{profile.code}-exp-{number:03d}",
                  "protocol": protocol, "operator": _pick(rng, OPERATORS),
                  "experiment_date": _date(rng, date(2022, 3, 1), 1000), "goal": _pick(rng, profile.goals)}
    if rng.random() < 0.3:
        experiment["notes"] = _pick(rng, ("Sections from two slides; see slide map.",
                                          "Instrument recalibrated halfway through.",
                                          "Repeat of an earlier run with fresh matrix."))
    return experiment


def _measurement(profile: _Profile, number: int, experiments: list[dict], samples: list[dict],
                 rng: np.random.Generator) -> dict:
    """A measurement whose method follows its experiment's protocol and fits its sample's matrix."""
    experiment = experiments[rng.integers(len(experiments))]
    _, ionisation, polarity = next(p for p in PROTOCOLS if p[0] == experiment["protocol"])
    sample = _fitting_sample(samples, ionisation, rng)
    acquired = _date(rng, _latest(experiment["experiment_date"], sample["collection_date"]), 60)
    measurement = {"type": "measurement", "submitter_id": f"{profile.code}-meas-{number:04d}",
                   "samples": {"submitter_id": sample["submitter_id"]},
                   "experiments": {"submitter_id": experiment["submitter_id"]},
                   "polarity": polarity or _pick(rng, ("positive", "negative")),
                   **_acquisition(ionisation, rng),
                   "acquisition_date": acquired}
    if ionisation in LASER_IONISATION:
        measurement.update(_laser(ionisation, rng))
    return measurement


def _fitting_sample(samples: list[dict], ionisation: str, rng: np.random.Generator) -> dict:
    """A sample with matrix for MALDI, without for matrix-free methods; any when none fits."""
    needs_matrix = ionisation in MATRIX_IONISATION
    fitting = [s for s in samples if (s["matrix"] != "none") == needs_matrix] or samples
    return fitting[rng.integers(len(fitting))]


def _acquisition(ionisation: str, rng: np.random.Generator) -> dict:
    """Instrument, mass range, resolution and raster typical of the ionisation method."""
    instrument, low_res, high_res = _pick(rng, INSTRUMENTS[ionisation])
    lows, highs = MASS_RANGES[ionisation]
    return {"instrument": instrument, "ionisation": ionisation,
            "mass_range_low": float(_pick(rng, lows)), "mass_range_high": float(_pick(rng, highs)),
            "mass_resolution": float(round(rng.uniform(low_res, high_res), -2)),
            "pixel_size_um": float(_pick(rng, PIXEL_SIZES_UM[ionisation])),
            "raster_width": int(rng.integers(40, 301)), "raster_height": int(rng.integers(30, 251))}


def _laser(ionisation: str, rng: np.random.Generator) -> dict:
    """Laser settings: kHz and hundreds of shots for MALDI, tens of Hz and few shots for ablation."""
    if ionisation == "LA-ICP":
        return {"laser_frequency_hz": float(_pick(rng, (10, 20, 50, 100))),
                "laser_power_percent": round(float(rng.uniform(30, 90)), 1),
                "shots_per_pixel": int(_pick(rng, (1, 2, 5, 10)))}
    return {"laser_frequency_hz": float(_pick(rng, (1000, 2000, 5000, 10000))),
            "laser_power_percent": round(float(rng.uniform(20, 80)), 1),
            "shots_per_pixel": int(_pick(rng, (50, 100, 200, 300, 500)))}


def _imaging_specs(project_id: str, entities: list[dict], rng: np.random.Generator) -> list[ImagingSpec]:
    """An image for every measurement of the project; one of each flaw on matrix (MALDI) measurements."""
    measurements = [e for e in entities if e["type"] == "measurement"]
    matrices = {e["submitter_id"]: e["matrix"] for e in entities if e["type"] == "sample"}
    # The first measurement stays a good continuous profile image: the one a reader opens first.
    maldi = [i for i in rng.permutation(len(measurements)) if i and measurements[i]["ionisation"] in MATRIX_IONISATION]
    flaws = dict(zip(maldi, FLAWS[1:]))
    return [_imaging_spec(project_id, m, matrices[m["samples"]["submitter_id"]], flaws.get(i, ""), rng, i == 0)
            for i, m in enumerate(measurements)]


def _imaging_spec(project_id: str, measurement: dict, matrix: str, flaw: str, rng: np.random.Generator,
                  first: bool = False) -> ImagingSpec:
    """The image of one measurement; the measurement's fields are aligned with what the file declares."""
    width, height = MISSING_PIXELS_RASTER if flaw == "missing_pixels" else _weighted(rng, RASTERS)
    mode, spectrum_type = _weighted(rng, KINDS)
    if flaw or first:  # the commonest kind: flaws in the data QC most often gets, and the showcase
        mode, spectrum_type = KINDS[0][0]
    ionisation = measurement["ionisation"]
    image = ImageSpec(name=measurement["submitter_id"], width=width, height=height,
                      seed=int(rng.integers(0, 2**31 - 1)), mode=mode, spectrum_type=spectrum_type,
                      polarity=measurement["polarity"], mz_low=measurement["mass_range_low"],
                      mz_high=measurement["mass_range_high"], resolving_power=measurement["mass_resolution"],
                      pixel_size_um=measurement["pixel_size_um"], flaw=flaw, elements=ionisation == "LA-ICP",
                      matrix=matrix if ionisation in MATRIX_IONISATION else "none")
    measurement.update(raster_width=width, raster_height=height, spectrum_type=spectrum_type, imzml_mode=mode)
    return ImagingSpec(project_id, measurement["submitter_id"], image)


def _qc_at_start(imaging: list[ImagingSpec]) -> list[ImagingSpec]:
    """The measurements whose QC the demo starts: the first image of each flaw, the first good
    molecular (not LA-ICP) image of each kind, and a negative-mode one if those have none."""
    good = [s for s in imaging if not s.image.flaw and not s.image.elements]
    first: dict[tuple[str, ...], ImagingSpec] = {}
    for spec in imaging:
        if spec.image.flaw:
            first.setdefault((spec.image.flaw,), spec)
    for spec in good:
        first.setdefault((spec.image.mode, spec.image.spectrum_type), spec)
    chosen = list(first.values())
    if not any(s.image.polarity == "negative" for s in chosen):
        chosen += [s for s in good if s.image.polarity == "negative"][:1]
    return chosen


def _broken_pair(first: ImagingSpec, projects: dict[str, list[dict]], rng: np.random.Generator) -> BrokenPair:
    """A new measurement like the first one, whose ibd comes from another image."""
    measurement = next(e for e in projects[first.project_id] if e["submitter_id"] == first.measurement)
    values = {name: str(value) for name, value in measurement.items()
              if name not in ("type", "samples", "experiments")}
    values.update(submitter_id=BROKEN_PAIR, sample=measurement["samples"]["submitter_id"],
                  experiment=measurement["experiments"]["submitter_id"])
    image = replace(first.image, name=BROKEN_PAIR, flaw="")
    return BrokenPair(first.project_id, values, image, replace(image, seed=int(rng.integers(0, 2**31 - 1))))


def _pick(rng: np.random.Generator, options, weights=None):
    """One of options as the Python object itself (numpy's choice would return numpy scalars)."""
    return options[rng.choice(len(options), p=weights)]


def _weighted(rng: np.random.Generator, pairs) -> str:
    """One value of (value, weight) pairs."""
    return _pick(rng, [value for value, _ in pairs], [weight for _, weight in pairs])


def _latest(*iso_dates: str) -> date:
    """The latest of ISO dates (which sort as text), so an acquisition follows what it needs."""
    return date.fromisoformat(max(iso_dates))


def _date(rng: np.random.Generator, start: date, span_days: int) -> str:
    """An ISO date within span_days after start."""
    return (start + timedelta(days=int(rng.integers(0, span_days)))).isoformat()
