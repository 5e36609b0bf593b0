"""What an imzML file says about itself, and its spectrum index, read in one streamed pass.

    header = read_header(path_or_binary_stream)     # HeaderError when the commons cannot trust it
    measurement_values(header)                      # the dictionary's measurement fields it fills
    header.extents["mz_offset"], header.dtypes      # the spectrum index (Extents), numpy dtypes

The one reader of an imzML's index in the commons: registration and uploads read the header,
previews and ion images (ims.layout) and QC's index (workflow_templates/steps/ibd.py) the index;
pyimzML's parse is only the tests' oracle for it. The XML goes through expat, the spectra on a lean
path of their own (_SpectrumList), so memory grows only by the index's row per spectrum and every
problem is placed at its line: broken XML (line and column), no UUID, no continuous/processed
term, an unknown accession where a binary data type or array kind is required, a binary type or
compression the commons does not read (nor pyimzML), a spectrum without data or without a
position, a pixel outside the declared grid, an array inside the ibd's 16-byte UUID. Up to
MAX_PROBLEMS are collected before reading stops. What is legal but worth a look (64-bit
intensities, no checksum, mixed polarity, no declared grid) goes to `Header.notes`.

Accessions are those of the imzML 1.1 specification (imagingMS.obo, IMS:) and PSI-MS (MS:).
Known writer bugs are read as pyimzML reads them (its ACCESSION_FIX_MAPPING: a float type's or a
polarity's name wins over its accession), and so are offsets that wrapped as signed 32-bit numbers.
"""
from __future__ import annotations

import re
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from xml.parsers import expat

import numpy as np
from pyimzml.ontology.ontology import ACCESSION_FIX_MAPPING, all_terms

MAX_PROBLEMS = 10
CHUNK = 1 << 20          # bytes of XML handed to expat at once
# Bounds no imzML comes near, so that a hostile file costs the reader little (a registration
# form reads the header of whatever a user sends): how deep elements nest (an imzML's: under 12),
# how many params one element holds with the groups it refers to (tens; a group may refer to
# groups, so without a bound params multiply), and how long one tag, comment or processing
# instruction may be (expat keeps an unfinished one and scans it again with each block fed).
MAX_DEPTH = 64
MAX_PARAMS = 1_000
MAX_TOKEN_BYTES = 1 << 20
UUID_TERM = "IMS:1000080"
# IMS:1000092 is not in imagingMS.obo 0.9.1, but Cardinal writes it for SHA-256
CHECKSUMS = {"IMS:1000091": "sha1", "IMS:1000090": "md5", "IMS:1000092": "sha256"}
CHECKSUM_NAMES = {"sha1": "SHA-1", "md5": "MD5", "sha256": "SHA-256"}
STORAGE = {"IMS:1000030": "continuous", "IMS:1000031": "processed"}
SPECTRUM_TYPES = {"MS:1000128": "profile", "MS:1000127": "centroid"}
POLARITIES = {"MS:1000130": "positive", "MS:1000129": "negative"}
ARRAY_KINDS = {"MS:1000514": "m/z", "MS:1000515": "intensity"}
# the binary types pyimzML (every reader of the commons) reads: accession -> (name, bytes per value)
BINARY_TYPES = {"MS:1000521": ("32-bit float", 4), "MS:1000523": ("64-bit float", 8),
                "MS:1000519": ("32-bit integer", 4), "MS:1000522": ("64-bit integer", 8),
                "IMS:1000141": ("32-bit integer", 4), "IMS:1000142": ("64-bit integer", 8)}
NUMPY_TYPES = {"32-bit float": "<f4", "64-bit float": "<f8", "32-bit integer": "<i4", "64-bit integer": "<i8"}
UNREADABLE_TYPES = {"MS:1000520": "16-bit float", "IMS:1100000": "8-bit integer", "IMS:1100001": "16-bit integer"}
NO_COMPRESSION = "MS:1000576"
OFFSET, LENGTH, ENCODED = "IMS:1000102", "IMS:1000103", "IMS:1000104"
EXTENT_TERMS = frozenset((OFFSET, LENGTH, ENCODED))
LEAVES = frozenset(("cvParam", "userParam", "referenceableParamGroupRef"))
POSITIONS = {"IMS:1000050": 0, "IMS:1000051": 1, "IMS:1000052": 2}
WINDOW = {"MS:1000501": 0, "MS:1000500": 1}          # scan window lower / upper limit
OBSERVED = {"MS:1000528": 0, "MS:1000527": 1}        # lowest / highest observed m/z
# the accessions a spectrum's profile/centroid or polarity may be given by (with pyimzML's fixes)
KIND_TERMS = frozenset((*SPECTRUM_TYPES, *POLARITIES, *(bad for bad, _name in ACCESSION_FIX_MAPPING)))
SCAN_ASPECTS = (("IMS:100040", "linescan sequence"), ("IMS:100041", "scan pattern"),
                ("IMS:100048", "scan type"), ("IMS:100049", "line scan direction"),
                ("IMS:100011", "laser shot mode"))
# the dictionary's ionisation terms, by the ion source's accession (else by words in its name)
IONISATION = {"MS:1000075": "MALDI", "MS:1000239": "MALDI", "MS:1002011": "DESI", "MS:1000398": "nano-DESI",
              "MS:1000073": "ESI", "MS:1000402": "SIMS", "MS:1000059": "LA-ICP"}
IONISATION_WORDS = (("nanospray desorption", "nano-DESI"), ("nano-desi", "nano-DESI"),
                    ("desorption electrospray", "DESI"), ("matrix-assisted laser", "MALDI"),
                    ("secondary ion", "SIMS"), ("electrospray", "ESI"))
INSTRUMENT_MODEL = "MS:1000031"
NOT_A_MODEL = {"MS:1000529", "MS:1000032", "MS:1000030"}  # serial number, customization, vendor
LENGTH_UNITS_UM = {"UO:0000017": 1.0, "UO:0000018": 1e-3, "UO:0000016": 1e3}  # µm, nm, mm
HEX_ID = re.compile(r"^[0-9a-f]{32}$")


class HeaderError(ValueError):
    """An imzML the commons will not take: one sentence per problem, each naming where it is."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class Param(NamedTuple):
    """One cvParam (or userParam, with an empty accession) as written, with its line."""
    accession: str
    name: str
    value: str
    unit: str
    line: int


@dataclass
class Instrument:
    """The instrumentConfiguration's model and its components' type terms."""
    model: str | None = None
    sources: list[str] = field(default_factory=list)
    analyzers: list[str] = field(default_factory=list)
    detectors: list[str] = field(default_factory=list)
    ionisation: str | None = None     # the dictionary's term for the first source it knows


FIELDS = ("x", "y", "z", "mz_offset", "mz_length", "mz_bytes", "intensity_offset", "intensity_length",
          "intensity_bytes")


@dataclass
class Extents:
    """The spectrum index: per spectrum, in the imzML's order, its pixel (x, y, z: 1 when not given, as
    pyimzML reads it) and, per array, its offset in the ibd (bytes, unwrapped), its number of values
    (external array length) and its bytes (external encoded length): one row of FIELDS each."""
    flat: array = field(default_factory=lambda: array("q"))

    def __len__(self) -> int:
        return len(self.flat) // len(FIELDS)

    def table(self) -> np.ndarray:
        """(spectra, len(FIELDS)) int64, a read-only view of the rows (no copy)."""
        return np.frombuffer(self.flat, dtype=np.int64).reshape(-1, len(FIELDS))

    def __getitem__(self, name: str) -> np.ndarray:
        """One field of every spectrum, e.g. extents["x"]."""
        return self.table()[:, FIELDS.index(name)]

    def ends(self) -> np.ndarray:
        """Per spectrum, the byte just after its last array."""
        return np.maximum(self["mz_offset"] + self["mz_bytes"], self["intensity_offset"] + self["intensity_bytes"])


@dataclass
class Header:
    """The typed header of one imzML file."""
    uuid: str = ""                                  # 32 lower-case hex digits
    checksum: tuple[str, str] | None = None         # (sha1 | md5 | sha256, lower-case hex)
    storage: str = ""                               # continuous | processed
    spectrum_type: str | None = None                # profile | centroid
    polarity: str | None = None                     # positive | negative
    pixels: tuple[int, int] | None = None           # declared max count of pixels x, y
    pixel_size_um: tuple[float, float] | None = None
    max_dimension: tuple[float, float] | None = None  # declared max dimension x, y (µm)
    scan: dict[str, str] = field(default_factory=dict)  # scan pattern, linescan sequence, ...
    mz_range: tuple[float, float] | None = None
    mz_range_from: str | None = None                # "scan window" | "observed m/z"
    instrument: Instrument = field(default_factory=Instrument)
    started: str | None = None                      # the run's startTimeStamp
    spectra: int = 0
    mz_type: str = ""                               # e.g. 64-bit float
    intensity_type: str = ""
    extents: Extents = field(default_factory=Extents)
    notes: list[str] = field(default_factory=list)

    @property
    def grid(self) -> tuple[int, int]:
        """The pixel grid: as declared, else as far as the spectra reach."""
        if self.pixels:
            return self.pixels
        if not len(self.extents):
            return (0, 0)
        return (int(self.extents["x"].max()), int(self.extents["y"].max()))

    @property
    def dtypes(self) -> tuple[str, str]:
        """numpy dtypes of the m/z and intensity arrays (imzML binary data is little-endian)."""
        return NUMPY_TYPES[self.mz_type], NUMPY_TYPES[self.intensity_type]

    def expected_ibd_bytes(self) -> int:
        """The smallest ibd that holds the UUID and every spectrum's arrays."""
        return int(max(16, self.extents.ends().max(initial=0)))


def read_header(source) -> Header:
    """The header of an imzML given as a path or a binary stream; HeaderError when refused."""
    if hasattr(source, "read"):
        return _Reader().read(source)
    with open(Path(source), "rb") as stream:
        return _Reader().read(stream)


def measurement_values(header: Header, properties: dict | None = None) -> dict:
    """The measurement fields of the default dictionary that the header fills (only those it knows);
    given a dictionary type's `properties`, only the fields it has, with a value its enum allows."""
    low_high = header.mz_range or (None, None)
    width_height = header.grid if header.spectra else (None, None)
    values = {"instrument": header.instrument.model, "ionisation": header.instrument.ionisation,
              "polarity": header.polarity, "mass_range_low": _rounded(low_high[0]),
              "mass_range_high": _rounded(low_high[1]),
              "pixel_size_um": header.pixel_size_um[0] if header.pixel_size_um else None,
              "raster_width": width_height[0] or None, "raster_height": width_height[1] or None,
              "acquisition_date": header.started[:10] if header.started else None,
              "spectrum_type": header.spectrum_type, "imzml_mode": header.storage or None}
    return {name: value for name, value in values.items()
            if value is not None and (properties is None or _allowed(properties.get(name), value))}


def _allowed(spec: dict | None, value) -> bool:
    return spec is not None and value in spec.get("enum", (value,))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def checksum_name(algorithm: str) -> str:
    """SHA-1, MD5 or SHA-256, as a technician reads it."""
    return CHECKSUM_NAMES[algorithm]


class _Frame:
    __slots__ = ("tag", "attrs", "line", "params")

    def __init__(self, tag: str, attrs: dict, line: int):
        self.tag, self.attrs, self.line, self.params = tag, attrs, line, []


class _Array:
    """One binaryDataArray of a spectrum: its group references and own params as read, then what they say."""
    __slots__ = ("line", "refs", "params", "extent", "kind", "binary", "offset", "length", "encoded", "unknown")

    def __init__(self, line: int):
        self.line, self.refs, self.params, self.extent = line, [], [], {}


class _Spectrum:
    __slots__ = ("number", "line", "position", "arrays")

    def __init__(self, number: int, line: int):
        self.number, self.line, self.position, self.arrays = number, line, [None, None, None], []


class _Reader:
    """One pass of expat over the file: start and end handlers keyed by element name."""

    def __init__(self):
        self.header, self.problems = Header(), []
        self.repeats: dict[tuple, list[int]] = {}   # a problem's kind -> [its place in problems, repeats]
        self.stack: list[_Frame] = []
        self.leaf = False                            # inside a param element (which has no frame)
        self.groups: dict[str, list[Param]] = {}
        self.group_attrs: dict[str, list[dict]] = {}
        self.configs: dict[str, Instrument] = {}
        self.default_config: str | None = None
        self.declared_spectra: int | None = None
        self.seen = {"polarity": set(), "spectrum_type": set()}
        self.ranges = {"scan window": [None, None], "observed m/z": [None, None]}
        self.starts = {"run": self._run, "spectrumList": self._spectrum_list,
                       "instrumentConfiguration": self._config_start}
        self.ends = {"referenceableParamGroup": self._group, "fileContent": self._file_content,
                     "scanSettings": self._scan_settings, "instrumentConfiguration": self._config_end,
                     "source": self._component, "analyzer": self._component, "detector": self._component}

    def read(self, stream) -> Header:
        parser = expat.ParserCreate()
        parser.StartElementHandler, parser.EndElementHandler = self._start, self._end
        parser.StartDoctypeDeclHandler = self._doctype
        self.parser = parser
        try:
            self._feed(stream)
        except expat.ExpatError as error:
            self.problems.append(f"the imzML is not well-formed XML at line {error.lineno}, "
                                 f"column {error.offset + 1}: {expat.ErrorString(error.code)}")
        except _Enough:
            pass
        except (LookupError, ValueError) as error:  # the declared encoding: unknown, or multi-byte
            if isinstance(error, HeaderError):
                raise
            self.problems.append(f"the imzML declares an encoding the commons cannot read ({error}); "
                                 "write it as UTF-8")
        if not self.problems:
            self._finish()
        for place, count in self.repeats.values():
            if count:
                self.problems[place] += f" (and {count} more spectra like it)"
        if self.problems:
            raise HeaderError(self.problems)
        return self.header

    def _feed(self, stream) -> None:
        """The stream to expat in large blocks (fewer calls into Python than ParseFile's), stopping
        at a tag, comment or processing instruction longer than MAX_TOKEN_BYTES (what expat holds
        unparsed after a block)."""
        fed = 0
        while block := stream.read(CHUNK):
            self.parser.Parse(block, False)
            fed += len(block)
            if fed - self.parser.CurrentByteIndex > MAX_TOKEN_BYTES:
                self._stop(f"line {self.parser.CurrentLineNumber} holds a tag, comment or processing instruction "
                           f"longer than {MAX_TOKEN_BYTES:,} bytes; an imzML's are far shorter")
        self.parser.Parse(b"", True)

    # -- the stream of elements ------------------------------------------------------

    def _start(self, name: str, attrs: dict) -> None:
        tag = name.rpartition(":")[2]
        line = self.parser.CurrentLineNumber
        if tag in LEAVES and self.stack:
            # params hold no elements: no frame of their own, only their parent's params grow
            self.leaf = True
            if tag == "referenceableParamGroupRef":
                self.stack[-1].params.extend(self._referenced(attrs.get("ref", ""), line))
            else:
                self.stack[-1].params.append(Param(attrs.get("accession", ""), attrs.get("name", ""),
                                                   attrs.get("value", ""), attrs.get("unitAccession", ""), line))
            if len(self.stack[-1].params) > MAX_PARAMS:
                self._stop(f"the <{self.stack[-1].tag}> at line {self.stack[-1].line} holds more than {MAX_PARAMS:,} "
                           "params (with the groups it refers to); an imzML's elements hold tens")
            return
        if not self.stack and tag not in ("mzML", "indexedmzML"):
            self._stop(f"this is not an imzML file: its root element is <{tag}>, not <mzML> (line {line})")
        if len(self.stack) >= MAX_DEPTH:
            self._deep(line)
        self.stack.append(_Frame(tag, attrs, line))
        if handler := self.starts.get(tag):
            handler(self.stack[-1])

    def _end(self, _name: str) -> None:
        if self.leaf:
            self.leaf = False
            return
        frame = self.stack.pop()
        if handler := self.ends.get(frame.tag):
            handler(frame)

    def _doctype(self, *_args) -> None:
        self._stop(f"the imzML declares a DOCTYPE (line {self.parser.CurrentLineNumber}); imzML files have none")

    def _referenced(self, ref: str, line: int) -> list[Param]:
        if ref not in self.groups:
            self.problem(f"line {line} refers to the referenceableParamGroup {ref!r}, which is not defined before it")
            return []
        return self.groups[ref]

    def problem(self, message: str, kind: tuple | None = None) -> None:
        """Record a problem; one of a kind already said (a group's flaw, in every spectrum) is only counted."""
        if kind in self.repeats:
            self.repeats[kind][1] += 1
            return
        if kind is not None:
            self.repeats[kind] = [len(self.problems), 0]
        self.problems.append(message)
        if len(self.problems) >= MAX_PROBLEMS:
            self.problems.append(f"reading stopped after {MAX_PROBLEMS} problems")
            raise _Enough

    def _stop(self, message: str) -> None:
        self.problems.append(message)
        raise _Enough

    def _deep(self, line: int) -> None:
        self._stop(f"elements are nested more than {MAX_DEPTH} deep at line {line}; an imzML's nest under 12")

    # -- the header's sections ---------------------------------------------------------

    def _group(self, frame: _Frame) -> None:
        self.groups[frame.attrs.get("id", "")] = frame.params
        # as a spectrum's own params come: attribute dicts
        self.group_attrs[frame.attrs.get("id", "")] = [
            {"accession": p.accession, "name": p.name, "value": p.value, "unitAccession": p.unit}
            for p in frame.params]

    def _file_content(self, frame: _Frame) -> None:
        params, where = {p.accession: p for p in frame.params}, f"the fileContent (line {frame.line})"
        self.header.uuid = self._uuid(params.get(UUID_TERM), where)
        self.header.checksum = self._checksum(params, where)
        modes = [STORAGE[a] for a in params if a in STORAGE]
        if len(modes) != 1:
            found = "both" if modes else "neither"
            self.problem(f"{where} declares {found} of continuous (IMS:1000030) and processed (IMS:1000031); "
                          f"it must declare exactly one{_unknown(frame.params, 'IMS:')}")
        else:
            self.header.storage = modes[0]
        self._kinds(frame.params)

    def _uuid(self, param: Param | None, where: str) -> str:
        if param is None:
            self.problem(f"{where} has no universally unique identifier (IMS:1000080): without it nothing "
                          "tells which ibd belongs to this imzML")
            return ""
        digits = re.sub(r"[{}\-\s]", "", param.value).lower()
        if not HEX_ID.match(digits):
            self.problem(f"the universally unique identifier {param.value!r} (line {param.line}) is not "
                          "a UUID of 32 hexadecimal digits")
        return digits

    def _checksum(self, params: dict[str, Param], where: str) -> tuple[str, str] | None:
        for accession, algorithm in CHECKSUMS.items():
            if param := params.get(accession):
                digits = param.value.strip().lower()
                size = {"sha1": 40, "md5": 32, "sha256": 64}[algorithm]
                if not re.fullmatch(f"[0-9a-f]{{{size}}}", digits):
                    self.problem(f"the ibd {checksum_name(algorithm)} {param.value!r} (line {param.line}) is not "
                                  f"{size} hexadecimal digits")
                return algorithm, digits
        self.header.notes.append(f"{where} records no checksum of the ibd (IMS:1000091 SHA-1 or IMS:1000090 "
                                 "MD5): only the UUID and the sizes can show that the ibd belongs to it")
        return None

    def _kinds(self, params: list[Param]) -> None:
        """Profile/centroid and polarity, wherever they are declared (fileContent, groups, spectra)."""
        for param in params:
            self.kind(param.accession, param.name)

    def _scan_settings(self, frame: _Frame) -> None:
        params = {p.accession: p for p in frame.params}
        counts = [self._number(params.get(a), int) for a in ("IMS:1000042", "IMS:1000043")]
        if all(counts):
            self.header.pixels = (counts[0], counts[1])
        sizes = [self._length_um(params.get(a)) for a in ("IMS:1000046", "IMS:1000047")]
        if sizes[0]:
            self.header.pixel_size_um = (sizes[0], sizes[1] or sizes[0])
        dimensions = [self._length_um(params.get(a)) for a in ("IMS:1000044", "IMS:1000045")]
        if all(dimensions):
            self.header.max_dimension = (dimensions[0], dimensions[1])
        for param in frame.params:
            for prefix, aspect in SCAN_ASPECTS:
                if param.accession.startswith(prefix):
                    self.header.scan[aspect] = param.name or all_terms.get(param.accession, ("",))[0]

    def _number(self, param: Param | None, kind):
        if param is None:
            return None
        try:
            value = kind(param.value)
        except ValueError:
            value = None
        if value is None or value <= 0:
            self.problem(f"{param.name or param.accession} is {param.value!r} (line {param.line}); "
                          f"it must be a positive {'whole ' if kind is int else ''}number")
            return None
        return value

    def _length_um(self, param: Param | None) -> float | None:
        value = self._number(param, float)
        if value is None:
            return None
        return value * LENGTH_UNITS_UM.get(param.unit, 1.0)

    def _config_start(self, frame: _Frame) -> None:
        self.configs[frame.attrs.get("id", "")] = Instrument()

    def _config_end(self, frame: _Frame) -> None:
        instrument = self.configs[frame.attrs.get("id", "")]
        named = [p for p in frame.params if p.accession == INSTRUMENT_MODEL and p.value]
        models = [p for p in frame.params
                  if p.accession and p.accession not in NOT_A_MODEL | {INSTRUMENT_MODEL} and not p.value]
        instrument.model = (named[0].value if named else models[0].name if models else None)

    def _component(self, frame: _Frame) -> None:
        config = next((f for f in reversed(self.stack) if f.tag == "instrumentConfiguration"), None)
        if config is None:
            return
        instrument = self.configs[config.attrs.get("id", "")]
        names = [p.name for p in frame.params if p.accession and not p.value and p.name]
        getattr(instrument, frame.tag + "s").extend(names)
        if frame.tag == "source" and instrument.ionisation is None:
            instrument.ionisation = next(filter(None, map(_ionisation, frame.params)), None)

    def _run(self, frame: _Frame) -> None:
        self.header.started = frame.attrs.get("startTimeStamp") or None
        self.default_config = frame.attrs.get("defaultInstrumentConfigurationRef")

    def _spectrum_list(self, frame: _Frame) -> None:
        try:
            self.declared_spectra = int(frame.attrs.get("count", ""))
        except ValueError:
            self.declared_spectra = None
        _SpectrumList(self).enter()

    def limit(self, kind: str, end: int, text: str) -> None:
        """Widen the m/z range of a kind ("scan window", "observed m/z") by one of its limits."""
        if (value := _float(text)) is not None:
            limits = self.ranges[kind]
            limits[end] = value if limits[end] is None else (min if end == 0 else max)(limits[end], value)

    def kind(self, accession: str, name: str) -> None:
        """Note a spectrum type or polarity term, read as pyimzML reads it."""
        accession = ACCESSION_FIX_MAPPING.get((accession, name), accession)
        if kind := SPECTRUM_TYPES.get(accession):
            self.seen["spectrum_type"].add(kind)
        elif polarity := POLARITIES.get(accession):
            self.seen["polarity"].add(polarity)

    # -- after the last element ----------------------------------------------------------

    def _finish(self) -> None:
        header = self.header
        if not header.uuid:
            self._soft("the imzML has no fileContent with a universally unique identifier (IMS:1000080)")
        if header.spectra == 0:
            self._soft("the imzML holds no spectra")
        configs = self.configs
        header.instrument = configs.get(self.default_config or "") or next(iter(configs.values()), Instrument())
        header.polarity = self._single("polarity", "positive and negative scans")
        header.spectrum_type = self._single("spectrum_type", "profile and centroid spectra")
        self._mz_range()
        self._notes()

    def _soft(self, message: str) -> None:
        try:
            self.problem(message)
        except _Enough:
            pass

    def _single(self, aspect: str, mixed: str) -> str | None:
        seen = self.seen[aspect]
        if len(seen) > 1:
            self.header.notes.append(f"the imzML holds {mixed}; {aspect.replace('_', ' ')} is left for you to choose")
        return next(iter(seen)) if len(seen) == 1 else None

    def _mz_range(self) -> None:
        for source in ("scan window", "observed m/z"):
            low, high = self.ranges[source]
            if low is not None and high is not None:
                self.header.mz_range, self.header.mz_range_from = (low, high), source
                return

    def _notes(self) -> None:
        header = self.header
        if header.intensity_type.startswith("64-bit"):
            header.notes.append(f"intensities are {header.intensity_type} values: legal imzML, twice the usual "
                                "32-bit size")
        if header.pixels is None and header.spectra:
            header.notes.append("the imzML declares no pixel grid (max count of pixels x/y, IMS:1000042/43); "
                                "the grid is taken from the spectra's positions")
        if self.declared_spectra is not None and self.declared_spectra != header.spectra:
            header.notes.append(f"the spectrumList declares {self.declared_spectra} spectra but holds {header.spectra}")


class _SpectrumList:
    """The spectra, the bulk of the file, on a lean path of their own: while inside the spectrumList,
    expat calls these handlers instead of the reader's. No frame per element; each container the
    index needs (spectrum, scan, scanWindow, binaryDataArray) pushes the function its cvParams go
    to, and the rest are skipped; the spectrum index grows by one row per spectrum. Lines are read
    only where a problem needs them (a spectrum's and an array's, which name a refusal's place)."""

    def __init__(self, reader: _Reader):
        self.reader, self.parser, self.header = reader, reader.parser, reader.header
        self.open: list[tuple] = []               # per open container: (where its cvParams go, its group refs)
        self.param_names: list[str] = []          # the cvParam element's names (with any prefix) met so far
        # element name (any prefix) -> handler; a name not met before is learned, the spectrumList's end leaves
        self.starts, self.ends = _Handlers(self._learn), _Handlers(lambda _name: self._leave)
        self.described: dict[tuple, tuple] = {}   # an array's group references and params -> what they say
        self.applied: set[str] = set()            # groups whose spectrum-level terms are already noted
        self.types: tuple[str, str] | None = None
        self.unwrap = {"m/z": _Unwrap(), "intensity": _Unwrap()}
        self.spectrum: _Spectrum | None = None
        self.array: _Array | None = None
        self.tags = {"spectrum": (self._spectrum_open, self._spectrum_close),
                     "scan": (self._scan_open, self._close), "scanWindow": (self._window_open, self._close),
                     "binaryDataArray": (self._array_open, self._array_close),
                     "referenceableParamGroupRef": (self._ref, None),
                     "userParam": (_nothing, None), "binary": (_nothing, None)}

    def enter(self) -> None:
        """From here to the spectrumList's end, expat calls this path's handlers: closures over the
        tables (no attribute look-up per element); a param's end (None) costs no call."""
        starts, ends = self.starts, self.ends

        def start(name: str, attrs: dict) -> None:
            starts[name](attrs)

        def end(name: str) -> None:
            if (handler := ends[name]) is not None:
                handler()

        self._open(None)   # the spectrumList's own params
        self.parser.StartElementHandler, self.parser.EndElementHandler = start, end

    def _learn(self, name: str):
        """The start handler of an element name not met before (its namespace prefix dropped); a
        cvParam's is the open container's sink itself (one call per param, the commonest element)."""
        tag = name.rpartition(":")[2]
        if tag == "cvParam":
            self.param_names.append(name)
            self.starts[name], self.ends[name] = self.open[-1][0], None
        else:
            self.starts[name], self.ends[name] = self.tags.get(tag, (self._open, self._close))
        return self.starts[name]

    def _leave(self) -> None:
        """The spectrumList's end: the reader's handlers again."""
        reader = self.reader
        self.parser.StartElementHandler, self.parser.EndElementHandler = reader._start, reader._end
        reader._end("spectrumList")

    # -- containers ----------------------------------------------------------------------

    def _push(self, sink, ref) -> None:
        if len(self.open) + len(self.reader.stack) >= MAX_DEPTH:
            self.reader._deep(self.parser.CurrentLineNumber)
        self.open.append((sink, ref))
        for name in self.param_names:     # cvParams go to sink from now on
            self.starts[name] = sink

    def _open(self, _attrs) -> None:
        self._push(_nothing, self._defined)

    def _close(self) -> None:
        self.open.pop()
        sink = self.open[-1][0]           # the spectrumList's context stays open to its end
        for name in self.param_names:
            self.starts[name] = sink

    def _ref(self, attrs: dict) -> None:
        self.open[-1][1](attrs.get("ref", ""))

    def _defined(self, ref: str) -> bool:
        if ref in self.reader.group_attrs:
            return True
        self.reader.problem(f"line {self.parser.CurrentLineNumber} refers to the referenceableParamGroup {ref!r}, "
                             "which is not defined before it", ("undefined group", ref))
        return False

    def _expand(self, ref: str) -> None:
        """A group's params, as if written where it is referenced."""
        if self._defined(ref):
            for attrs in self.reader.group_attrs[ref]:
                self.open[-1][0](attrs)

    # -- a spectrum and its scan --------------------------------------------------------------

    def _spectrum_open(self, _attrs) -> None:
        self.header.spectra += 1
        self.spectrum = _Spectrum(self.header.spectra, self.parser.CurrentLineNumber)
        self._push(self._spectrum_param, self._spectrum_ref)

    def _spectrum_param(self, attrs: dict) -> None:
        accession = attrs.get("accession", "")
        if accession in KIND_TERMS:
            self.reader.kind(accession, attrs.get("name", ""))
        elif (end := OBSERVED.get(accession)) is not None:
            self.reader.limit("observed m/z", end, attrs.get("value", ""))

    def _spectrum_ref(self, ref: str) -> None:
        if ref not in self.applied:    # what a group says is the same in every spectrum referring to it
            self._expand(ref)
            self.applied.add(ref)

    def _scan_open(self, _attrs) -> None:
        self._push(self._scan_param, self._expand)

    def _scan_param(self, attrs: dict) -> None:
        accession = attrs.get("accession", "")
        if (axis := POSITIONS.get(accession)) is not None:
            self.spectrum.position[axis] = _integer(attrs.get("value", ""))
        elif (end := OBSERVED.get(accession)) is not None:
            self.reader.limit("observed m/z", end, attrs.get("value", ""))

    def _window_open(self, _attrs) -> None:
        self._push(self._window_param, self._expand)

    def _window_param(self, attrs: dict) -> None:
        if (end := WINDOW.get(attrs.get("accession", ""))) is not None:
            self.reader.limit("scan window", end, attrs.get("value", ""))

    # -- a binary data array ----------------------------------------------------------------

    def _array_open(self, _attrs) -> None:
        self.array = _Array(self.parser.CurrentLineNumber)
        self._push(self._array_param, self._array_ref)

    def _array_param(self, attrs: dict) -> None:
        accession = attrs.get("accession", "")
        if accession in EXTENT_TERMS:
            self.array.extent[accession] = attrs.get("value", "")
        else:
            self.array.params.append(Param(accession, attrs.get("name", ""), attrs.get("value", ""),
                                           attrs.get("unitAccession", ""),
                                           self.parser.CurrentLineNumber))
            if len(self.array.params) > MAX_PARAMS:
                self.reader._stop(f"the binaryDataArray at line {self.array.line} holds more than {MAX_PARAMS:,} "
                                  "params; an imzML's hold tens")

    def _array_ref(self, ref: str) -> None:
        if self._defined(ref):
            self.array.refs.append(ref)

    def _array_close(self) -> None:
        self._close()
        array, self.array = self.array, None
        if self.spectrum is None:
            return   # not a spectrum's: nothing of the image
        key = (*array.refs, *[(p.accession, p.name) for p in array.params]) if array.params else tuple(array.refs)
        if (description := self.described.get(key)) is None:
            description = self.described[key] = self._description(array)
        array.kind, array.binary, issues, array.unknown = description
        for issue, message in issues:
            self.reader.problem(f"{self._array_place(array)} {message}", (issue, array.kind))
        extent = array.extent
        array.offset, array.length = _integer(extent.get(OFFSET, "")), _integer(extent.get(LENGTH, ""))
        array.encoded = _integer(extent[ENCODED]) if ENCODED in extent else None
        self.spectrum.arrays.append(array)

    def _description(self, array: _Array) -> tuple:
        """(kind, (binary type, bytes per value), issues, unknown accessions) of an array's params."""
        described = [p for ref in array.refs for p in self.reader.groups[ref]] + array.params
        described = [p for p in described if p.accession not in EXTENT_TERMS]
        kind, binary, issues = _describe(described)
        return kind, binary, issues, "" if kind else _unknown(described, "")

    def _array_place(self, array: _Array) -> str:
        return f"the {array.kind or 'data'} array of spectrum {self.spectrum.number} (line {array.line})"

    # -- the spectrum's end: checked, then one row of the index --------------------------------

    def _spectrum_close(self) -> None:
        self._close()
        spectrum, self.spectrum = self.spectrum, None
        mz = intensity = None
        for array in spectrum.arrays:     # the last of each kind, as pyimzML takes it
            if array.kind == "m/z":
                mz = array
            elif array.kind == "intensity":
                intensity = array
        if mz is None or intensity is None:
            missing = [kind for kind, found in (("m/z", mz), ("intensity", intensity)) if found is None]
            self.reader.problem(f"{_place(spectrum)} has no {' and no '.join(missing)} array (MS:1000514 m/z "
                                 f"array, MS:1000515 intensity array){''.join(a.unknown for a in spectrum.arrays)}",
                                 ("missing", *missing))
        elif self._arrays_fit(spectrum, mz, intensity) and self._placed(spectrum):
            x, y, z = spectrum.position
            self.header.extents.flat.extend((x, y, 1 if z is None else z, mz.offset, mz.length, mz.encoded,
                                             intensity.offset, intensity.length, intensity.encoded))

    def _arrays_fit(self, spectrum: _Spectrum, mz: _Array, intensity: _Array) -> bool:
        for kind, each in (("m/z", mz), ("intensity", intensity)):
            if each.binary is None:
                return False
            if each.offset is None or each.length is None:
                self.reader.problem(f"{_place(spectrum)}: its {kind} array lacks the external offset (IMS:1000102) "
                                     "or the external array length (IMS:1000103)", ("extent", kind))
                return False
            each.offset = self.unwrap[kind](each.offset)
            if not self._one_array_fits(spectrum, kind, each):
                return False
        if mz.length != intensity.length:
            self.reader.problem(f"{_place(spectrum)} has {mz.length} m/z values but {intensity.length} intensities",
                                 ("lengths",))
            return False
        return self._one_type(spectrum, mz, intensity)

    def _one_array_fits(self, spectrum: _Spectrum, kind: str, each: _Array) -> bool:
        name, size = each.binary
        encoded = each.length * size
        problem = None
        if each.length == 0:
            problem = (f"{_place(spectrum)} is empty: its {kind} array has 0 values (external array length); "
                       "every spectrum needs data", ("empty",))
        elif each.encoded is not None and each.encoded != encoded:
            problem = (f"{_place(spectrum)}: its {kind} array is {each.encoded} bytes (external encoded length) "
                       f"for {each.length} {name} values, which take {encoded}", ("encoded", kind))
        elif each.offset < 16:
            problem = (f"{_place(spectrum)}: its {kind} array starts at byte {each.offset}, inside the ibd's "
                       "16-byte UUID", ("in uuid", kind))
        if problem:
            self.reader.problem(*problem)
            return False
        each.encoded = encoded
        return True

    def _one_type(self, spectrum: _Spectrum, mz: _Array, intensity: _Array) -> bool:
        """One binary type per array in the whole file (the index keeps one dtype per array)."""
        types = (mz.binary[0], intensity.binary[0])
        if self.types is None:
            self.types = types
            self.header.mz_type, self.header.intensity_type = types
        elif types != self.types:
            kind, now, first = next((k, n, f) for k, n, f in zip(("m/z", "intensity"), types, self.types) if n != f)
            self.reader.problem(f"{_place(spectrum)}: its {kind} array is {now} where earlier spectra's are {first}; "
                                 "the commons reads one binary type per array", ("types", kind))
            return False
        return True

    def _placed(self, spectrum: _Spectrum) -> bool:
        x, y, _z = spectrum.position
        if x is None or y is None:
            self.reader.problem(f"{_place(spectrum)} has no position x (IMS:1000050) and y (IMS:1000051) as "
                                 "whole numbers", ("no position",))
            return False
        width, height = self.header.pixels or (None, None)
        if x < 1 or y < 1 or (width and (x > width or y > height)):
            grid = f"the declared grid of {width} x {height} pixels" if width else "the grid, which starts at 1"
            self.reader.problem(f"{_place(spectrum)} lies at x={x}, y={y}, outside {grid} (max count of pixels "
                                 "x/y)", ("outside",))
            return False
        return True


class _Handlers(dict):
    """Handlers by element name; a name without one gets missing(name)'s."""

    def __init__(self, missing):
        super().__init__()
        self.missing = missing

    def __missing__(self, name: str):
        return self.missing(name)


def _place(spectrum: _Spectrum) -> str:
    return f"spectrum {spectrum.number} (line {spectrum.line})"


def _nothing(*_args) -> None:
    """What an element the index does not need gets."""


class _Enough(Exception):
    """Stops the parse: a problem that makes the rest meaningless, or MAX_PROBLEMS of them."""


class _Unwrap:
    """Offsets some writers store as signed 32-bit numbers, unwrapped as pyimzML does."""

    def __init__(self):
        self.delta, self.previous = 0, 0

    def __call__(self, value: int) -> int:
        if value < 0 <= self.previous:
            self.delta += 2 ** 32
        self.previous = value
        return value + self.delta


def _describe(params: list[Param]) -> tuple[str | None, tuple[str, int] | None, list[tuple[str, str]]]:
    """(kind, (binary type, bytes per value), [(issue, words)]) of one binaryDataArray's params."""
    accessions = [_fixed(p) for p in params]
    kinds = [ARRAY_KINDS[a] for a in accessions if a in ARRAY_KINDS]
    found = [BINARY_TYPES[a] for a in accessions if a in BINARY_TYPES]
    issues = [("type", f"holds {UNREADABLE_TYPES[a]} values ({a}), which the commons cannot read; "
                       f"allowed: {_allowed_types()}") for a in accessions if a in UNREADABLE_TYPES]
    issues += [("compressed", f"is compressed ({_term_name(p)}, {p.accession}); the commons reads only "
                              "uncompressed ibd arrays (no compression, MS:1000576)")
               for p in params if p.accession != NO_COMPRESSION and "compression" in _term_name(p)]
    if not found and not issues:
        issues.append(("no type", f"declares no binary data type it knows{_unknown(params, '')}; "
                                  f"allowed: {_allowed_types()}"))
    return (kinds[0] if kinds else None), (found[0] if found else None), issues


def _fixed(param: Param) -> str:
    """The accession as pyimzML reads it: two known writer bugs name the right type with the wrong accession."""
    return ACCESSION_FIX_MAPPING.get((param.accession, param.name), param.accession)


def _term_name(param: Param) -> str:
    return all_terms.get(param.accession, (param.name,))[0] or param.name


def _unknown(params: list[Param], prefix: str) -> str:
    """A clause naming the accessions the vocabularies do not know, if any."""
    unknown = [f"{p.accession} ({p.name!r}, line {p.line})" for p in params
               if p.accession.startswith(prefix) and p.accession and p.accession not in all_terms]
    return f"; unknown accessions: {', '.join(unknown)}" if unknown else ""


def _allowed_types() -> str:
    names = dict.fromkeys(f"{name} ({accession})" for accession, (name, _) in BINARY_TYPES.items()
                          if accession.startswith("MS:"))
    return ", ".join(names)


def _ionisation(param: Param) -> str | None:
    if term := IONISATION.get(param.accession):
        return term
    name = param.name.lower()
    return next((term for words, term in IONISATION_WORDS if words in name), None)


def _integer(text: str) -> int | None:
    try:
        return int(text)   # int() allows the white space around it
    except (ValueError, TypeError):
        return None


def _float(text: str) -> float | None:
    try:
        return float(text)
    except (ValueError, TypeError):
        return None
