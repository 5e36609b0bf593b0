"""Small imzML + ibd pairs written by pyimzML's ImzMLWriter for tests, and a hand-written header
in the shape instrument software writes (an instrument configuration, pixel size, scan window)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from pyimzml.ImzMLWriter import ImzMLWriter


def write_pair(directory: Path, name: str = "run", mode: str = "continuous", width: int = 3, height: int = 2,
               intensity_dtype=np.float32, polarity: str = "positive", spec_type: str = "profile",
               points: int = 20) -> tuple[Path, Path]:
    """(imzML path, ibd path) of a width x height image, one spectrum per pixel."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    base = Path(directory) / name
    mzs = np.linspace(400.0, 900.0, points)
    with ImzMLWriter(str(base), mode=mode, polarity=polarity, spec_type=spec_type,
                     intensity_dtype=intensity_dtype) as writer:
        for y in range(1, height + 1):
            for x in range(1, width + 1):
                writer.addSpectrum(mzs, np.full(points, x * 10 + y, dtype=intensity_dtype), (x, y))
    return base.with_suffix(".imzML"), base.with_suffix(".ibd")


def pair_bytes(directory: Path, **options) -> tuple[bytes, bytes]:
    """The two files' bytes, as an upload sends them."""
    imzml, ibd = write_pair(directory, **options)
    return imzml.read_bytes(), ibd.read_bytes()


# An instrument's header, written for these tests in the shape such exports take: the UUID in
# braces, the SHA-1 in capitals, the IMS vocabulary not declared in the cvList, an instrument
# configuration with its model and components, pixel sizes with units, the m/z range as scan windows.
INSTRUMENT_HEADER = """<?xml version="1.0" encoding="ISO-8859-1"?>
<mzML xmlns="http://psi.hupo.org/ms/mzml" version="1.1">
  <cvList count="2">
    <cv id="MS" fullName="Proteomics Standards Initiative Mass Spectrometry Ontology" version="4.1.0" URI="psi-ms.obo"/>
    <cv id="UO" fullName="Unit Ontology" version="09:04:2014" URI="unit.obo"/>
  </cvList>
  <fileDescription>
    <fileContent>
      <cvParam cvRef="MS" accession="MS:1000579" name="MS1 spectrum" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000031" name="processed" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000080" name="universally unique identifier" value="{UUID}"/>
      <cvParam cvRef="IMS" accession="IMS:1000091" name="ibd SHA-1" value="SHA1"/>
    </fileContent>
  </fileDescription>
  <referenceableParamGroupList count="4">
    <referenceableParamGroup id="spectrum">
      <cvParam cvRef="MS" accession="MS:1000579" name="MS1 spectrum" value=""/>
      <cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="1"/>
      <cvParam cvRef="MS" accession="MS:1000127" name="centroid spectrum" value=""/>
      <cvParam cvRef="MS" accession="MS:1000129" name="negative scan" value=""/>
    </referenceableParamGroup>
    <referenceableParamGroup id="mzArray">
      <cvParam cvRef="MS" accession="MS:1000514" name="m/z array" value="" unitCvRef="MS" unitAccession="MS:1000040" unitName="m/z"/>
      <cvParam cvRef="MS" accession="MS:1000523" name="64-bit float" value=""/>
      <cvParam cvRef="MS" accession="MS:1000576" name="no compression" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000101" name="external data" value="true"/>
    </referenceableParamGroup>
    <referenceableParamGroup id="intensityArray">
      <cvParam cvRef="MS" accession="MS:1000515" name="intensity array" value="" unitCvRef="MS" unitAccession="MS:1000131" unitName="number of detector counts"/>
      <cvParam cvRef="MS" accession="MS:1000521" name="32-bit float" value=""/>
      <cvParam cvRef="MS" accession="MS:1000576" name="no compression" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000101" name="external data" value="true"/>
    </referenceableParamGroup>
    <referenceableParamGroup id="instrument">
      <cvParam cvRef="MS" accession="MS:1003124" name="timsTOF fleX" value=""/>
      <cvParam cvRef="MS" accession="MS:1000529" name="instrument serial number" value="1869540.10"/>
    </referenceableParamGroup>
  </referenceableParamGroupList>
  <softwareList count="1">
    <software id="acquisition" version="5.1">
      <cvParam cvRef="MS" accession="MS:1000799" name="custom unreleased software tool" value="acquisition"/>
    </software>
  </softwareList>
  <scanSettingsList count="1">
    <scanSettings id="scansettings1">
      <cvParam cvRef="IMS" accession="IMS:1000401" name="top down" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000410" name="meandering" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000480" name="horizontal line scan" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000491" name="linescan left right" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000042" name="max count of pixels x" value="2"/>
      <cvParam cvRef="IMS" accession="IMS:1000043" name="max count of pixels y" value="1"/>
      <cvParam cvRef="IMS" accession="IMS:1000044" name="max dimension x" value="40" unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"/>
      <cvParam cvRef="IMS" accession="IMS:1000045" name="max dimension y" value="20" unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"/>
      <cvParam cvRef="IMS" accession="IMS:1000046" name="pixel size (x)" value="20.0" unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"/>
      <cvParam cvRef="IMS" accession="IMS:1000047" name="pixel size y" value="20.0" unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"/>
    </scanSettings>
  </scanSettingsList>
  <instrumentConfigurationList count="1">
    <instrumentConfiguration id="IC1">
      <referenceableParamGroupRef ref="instrument"/>
      <componentList count="3">
        <source order="1">
          <cvParam cvRef="MS" accession="MS:1000075" name="matrix-assisted laser desorption ionization" value=""/>
          <cvParam cvRef="MS" accession="MS:1000843" name="wavelength" value="355" unitCvRef="UO" unitAccession="UO:0000018" unitName="nanometer"/>
        </source>
        <analyzer order="2">
          <cvParam cvRef="MS" accession="MS:1000084" name="time-of-flight" value=""/>
        </analyzer>
        <detector order="3">
          <cvParam cvRef="MS" accession="MS:1000114" name="microchannel plate detector" value=""/>
        </detector>
      </componentList>
    </instrumentConfiguration>
  </instrumentConfigurationList>
  <dataProcessingList count="1">
    <dataProcessing id="export">
      <processingMethod order="1" softwareRef="acquisition">
        <cvParam cvRef="MS" accession="MS:1000544" name="Conversion to mzML" value=""/>
      </processingMethod>
    </dataProcessing>
  </dataProcessingList>
  <run defaultInstrumentConfigurationRef="IC1" id="slide7" startTimeStamp="2024-06-20T05:17:35">
    <spectrumList count="2" defaultDataProcessingRef="export">
SPECTRA    </spectrumList>
  </run>
</mzML>
"""

SPECTRUM = """      <spectrum id="Scan={n}" defaultArrayLength="0" index="{index}">
        <referenceableParamGroupRef ref="spectrum"/>
        <scanList count="1">
          <cvParam cvRef="MS" accession="MS:1000795" name="no combination" value=""/>
          <scan instrumentConfigurationRef="IC1">
            <cvParam cvRef="IMS" accession="IMS:1000050" name="position x" value="{x}"/>
            <cvParam cvRef="IMS" accession="IMS:1000051" name="position y" value="1"/>
            <scanWindowList count="1">
              <scanWindow>
                <cvParam cvRef="MS" accession="MS:1000501" name="scan window lower limit" value="300" unitCvRef="MS" unitAccession="MS:1000040" unitName="m/z"/>
                <cvParam cvRef="MS" accession="MS:1000500" name="scan window upper limit" value="1350" unitCvRef="MS" unitAccession="MS:1000040" unitName="m/z"/>
              </scanWindow>
            </scanWindowList>
          </scan>
        </scanList>
        <binaryDataArrayList count="2">
          <binaryDataArray encodedLength="0">
            <referenceableParamGroupRef ref="mzArray"/>
            <cvParam cvRef="IMS" accession="IMS:1000102" name="external offset" value="{mz_offset}"/>
            <cvParam cvRef="IMS" accession="IMS:1000103" name="external array length" value="4"/>
            <cvParam cvRef="IMS" accession="IMS:1000104" name="external encoded length" value="32"/>
            <binary/>
          </binaryDataArray>
          <binaryDataArray encodedLength="0">
            <referenceableParamGroupRef ref="intensityArray"/>
            <cvParam cvRef="IMS" accession="IMS:1000102" name="external offset" value="{intensity_offset}"/>
            <cvParam cvRef="IMS" accession="IMS:1000103" name="external array length" value="4"/>
            <cvParam cvRef="IMS" accession="IMS:1000104" name="external encoded length" value="16"/>
            <binary/>
          </binaryDataArray>
        </binaryDataArrayList>
      </spectrum>
"""

INSTRUMENT_UUID = "5a0fbd7e-3c1d-4e52-9a55-0c6f4e0b7d21"


def instrument_pair() -> tuple[bytes, bytes]:
    """The hand-written header with two processed centroid spectra, and an ibd that fits it."""
    uuid_bytes = bytes.fromhex(INSTRUMENT_UUID.replace("-", ""))
    spectra = [(np.array([301.5, 500.25, 760.585, 1200.0]), np.array([5, 80, 300, 12], dtype=np.float32)),
               (np.array([310.0, 500.3, 760.59, 1340.5]), np.array([7, 60, 250, 9], dtype=np.float32))]
    ibd, xml, offset = bytearray(uuid_bytes), [], 16
    for n, (mzs, intensities) in enumerate(spectra, start=1):
        xml.append(SPECTRUM.format(n=n, index=n - 1, x=n, mz_offset=offset, intensity_offset=offset + 32))
        ibd += mzs.astype("<f8").tobytes() + intensities.astype("<f4").tobytes()
        offset += 48
    text = (INSTRUMENT_HEADER.replace("UUID", INSTRUMENT_UUID.upper())
            .replace("SHA1", hashlib.sha1(ibd).hexdigest().upper()).replace("SPECTRA", "".join(xml)))
    return text.encode("iso-8859-1"), bytes(ibd)
