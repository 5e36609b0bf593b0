"""Previews of imzML images without a service: the storage-root checks, the arrays computed from
small images the demo writer makes (both modes), the cache, and the figures."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from labcommons.demo.imzml import mz_axis, write_imzml_pair
from ims import images
from portal.previews import cache, figures, imzml
from ground.storage import NotReadable, open_checked, resolve

WIDTH, HEIGHT = 7, 5


@pytest.fixture
def root(tmp_path):
    (tmp_path / "storage").mkdir()
    return tmp_path / "storage"


@pytest.fixture(params=["continuous", "processed"])
def image(request, root):
    """(mode, imzML path, ibd path, the imzML's sha256) of a WIDTH x HEIGHT image in the root."""
    written = write_imzml_pair(root / "proj" / "meas-1", "meas-1", WIDTH, HEIGHT, seed=3, mode=request.param)
    return request.param, written[0]["path"], written[1]["path"], written[0]["sha256"]


# -- the storage root ------------------------------------------------------------------------

def test_a_file_url_in_its_projects_folder_resolves_to_its_path(root):
    target = root / "proj" / "a b.imzML"
    target.parent.mkdir()
    target.write_text("x")
    assert resolve(target.as_uri(), root, "proj") == target.resolve()
    assert resolve("file://localhost" + str(target).replace(" ", "%20"), root, "proj") == target.resolve()


@pytest.mark.parametrize("url, words", [
    ("file:///etc/passwd", "outside the folder of project proj in the storage root"),
    ("s3://bucket/key.imzML", "not a file:// URL"),
    ("https://example.org/x.imzML", "not a file:// URL"),
    ("/etc/passwd", "not a file:// URL"),
    ("", "not a file:// URL"),
    ("file://otherhost/data/x.imzML", "does not name a local file"),
    ("file:relative/x.imzML", "absolute path"),
    ("file:///tmp/x%00.imzML", "absolute path"),
])
def test_anything_but_a_local_file_url_is_refused(root, url, words):
    with pytest.raises(NotReadable, match=words):
        resolve(url, root, "proj")


def test_a_path_climbing_out_of_the_project_is_refused(root, tmp_path):
    (tmp_path / "x").write_text("secret")
    (root / "other").mkdir()
    (root / "other" / "x").write_text("secret")
    for url in (f"file://{root}/../x", f"file://{root}/%2e%2e/x", f"file://{root}/proj/../../x",
                f"file://{root}/proj/../other/x", f"file://{root}/other/x"):
        with pytest.raises(NotReadable, match="outside the folder of project proj"):
            resolve(url, root, "proj")


@pytest.mark.parametrize("project", ["", ".", "..", "a/b", "a\x00"])
def test_a_project_id_that_names_no_single_folder_is_refused(root, project):
    with pytest.raises(NotReadable, match="not a project id"):
        resolve(f"file://{root}/x/y", root, project)


def test_the_project_folder_itself_and_a_directory_in_it_are_refused(root):
    (root / "proj" / "m").mkdir(parents=True)
    with pytest.raises(NotReadable, match="outside the folder of project proj"):
        resolve((root / "proj").as_uri(), root, "proj")
    with pytest.raises(NotReadable, match="not a regular file"):
        resolve((root / "proj" / "m").as_uri(), root, "proj")


def test_a_symlink_out_of_the_project_is_refused(root, tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    (root / "other").mkdir()
    (root / "other" / "theirs.ibd").write_text("theirs")
    (root / "proj").mkdir()
    (root / "proj" / "innocent.imzML").symlink_to(tmp_path / "secret.txt")
    (root / "proj" / "linked-dir").symlink_to(tmp_path)
    (root / "proj" / "sibling.ibd").symlink_to(root / "other" / "theirs.ibd")
    for name in ("innocent.imzML", "linked-dir/secret.txt", "sibling.ibd"):
        with pytest.raises(NotReadable, match="links outside the folder of project proj"):
            resolve((root / "proj" / name).as_uri(), root, "proj")


def test_a_project_folder_that_is_itself_a_link_is_refused(root):
    (root / "other").mkdir()
    (root / "other" / "theirs.ibd").write_text("theirs")
    (root / "proj").symlink_to(root / "other")
    with pytest.raises(NotReadable, match="links outside the folder of project proj"):
        resolve((root / "proj" / "theirs.ibd").as_uri(), root, "proj")


def test_a_symlink_within_the_project_is_followed(root):
    (root / "proj").mkdir()
    (root / "proj" / "real.imzML").write_text("x")
    (root / "proj" / "alias.imzML").symlink_to(root / "proj" / "real.imzML")
    assert resolve((root / "proj" / "alias.imzML").as_uri(), root, "proj") == (root / "proj" / "real.imzML").resolve()


def test_a_missing_file_is_refused_without_a_stack_trace(root):
    with pytest.raises(NotReadable, match="missing"):
        resolve((root / "proj" / "nope.imzML").as_uri(), root, "proj")


def test_a_link_put_in_place_after_the_check_is_not_opened(root):
    (root / "proj").mkdir()
    (root / "proj" / "a.ibd").write_text("mine")
    checked = resolve((root / "proj" / "a.ibd").as_uri(), root, "proj")
    (root / "other").mkdir()
    (root / "other" / "b.ibd").write_text("theirs")
    checked.unlink()
    checked.symlink_to(root / "other" / "b.ibd")
    with pytest.raises(OSError):
        open_checked(checked)


# -- the arrays ------------------------------------------------------------------------------

def test_the_tic_image_has_the_rasters_shape_and_sums_each_spectrum(image):
    mode, imzml_path, ibd_path, _ = image
    preview = imzml.compute(imzml_path, ibd_path)
    assert preview.tic.shape == (HEIGHT, WIDTH) and preview.origin == (1, 1)
    assert not np.isnan(preview.tic).any() and (preview.index >= 0).all()
    x, y = 4, 2
    mz, intensity = imzml.spectrum(preview, ibd_path, preview.spectrum_at(x, y))
    assert preview.tic[y - 1, x - 1] == pytest.approx(intensity.sum())
    assert preview.spectrum_at(WIDTH + 1, 1) is None and preview.spectrum_at(0, 1) is None
    assert preview.binned == (mode == "processed")


def test_the_mean_spectrum_is_the_mean_over_pixels_on_one_axis(image):
    mode, imzml_path, ibd_path, _ = image
    preview = imzml.compute(imzml_path, ibd_path)
    spectra = [imzml.spectrum(preview, ibd_path, n) for n in range(WIDTH * HEIGHT)]
    if mode == "continuous":
        assert np.allclose(preview.mz, mz_axis())
        assert np.allclose(preview.mean, np.mean([i for _, i in spectra], axis=0))
    else:
        assert len(preview.mz) == imzml.MEAN_BINS and np.all(np.diff(preview.mz) > 0)
        # binning moves intensity along the axis but keeps all of it
        assert preview.mean.sum() == pytest.approx(np.mean([i.sum() for _, i in spectra]))
        half = (preview.mz[1] - preview.mz[0]) / 2  # the axis is the bins' centres, spanning every m/z
        assert preview.mz[0] - half == pytest.approx(min(m.min() for m, _ in spectra))
        assert preview.mz[-1] + half == pytest.approx(max(m.max() for m, _ in spectra))


def test_the_brightest_pixel_is_where_the_tic_peaks(image):
    _, imzml_path, ibd_path, _ = image
    preview = imzml.compute(imzml_path, ibd_path)
    x, y = preview.brightest()
    assert preview.tic[y - 1, x - 1] == np.nanmax(preview.tic)


def test_an_ibd_shorter_than_its_imzml_says_is_refused(image):
    _, imzml_path, ibd_path, _ = image
    with open(ibd_path, "r+b") as stream:
        stream.truncate(os.path.getsize(ibd_path) // 2)
    with pytest.raises(NotReadable, match="shorter than its imzML"):
        imzml.compute(imzml_path, ibd_path)


def test_a_file_that_is_not_imzml_is_refused(root):
    (root / "bad.imzML").write_text("<not imzml")
    (root / "bad.ibd").write_bytes(b"\0" * 16)
    with pytest.raises(NotReadable, match="cannot be read as imzML"):
        imzml.compute(root / "bad.imzML", root / "bad.ibd")


# -- the cache -------------------------------------------------------------------------------

def test_previews_are_cached_under_the_files_path_and_sha256_and_reused(image, tmp_path):
    _, imzml_path, ibd_path, sha256 = image
    directory = cache.cache_dir(tmp_path / "data")
    first = cache.preview(imzml_path, ibd_path, sha256, directory)
    entry = cache.entry(directory, imzml_path, sha256, ibd_path)
    assert entry.exists() and list(directory.iterdir()) == [entry]  # no temporary file left behind
    written = entry.stat().st_mtime_ns
    second = cache.preview(imzml_path, ibd_path, sha256, directory)
    assert entry.stat().st_mtime_ns == written  # read, not computed and written again
    for name in ("tic", "index", "mz", "mean", "spans"):
        assert np.array_equal(getattr(first, name), getattr(second, name), equal_nan=True)
    assert (first.origin, first.binned, first.dtypes) == (second.origin, second.binned, second.dtypes)


def test_without_a_recorded_sha256_the_key_has_the_files_own(image, tmp_path):
    _, imzml_path, ibd_path, sha256 = image
    directory = cache.cache_dir(tmp_path / "data")
    cache.preview(imzml_path, ibd_path, "not a checksum/../../x", directory)
    assert list(directory.iterdir()) == [cache.entry(directory, imzml_path, sha256, ibd_path)]


def test_a_wrong_pair_viewed_first_never_shows_in_the_correct_pair_sharing_its_imzml(root, tmp_path):
    # continuous: two datasets' ibds have the same layout, so the wrong pair reads without error
    mine, other = (write_imzml_pair(root / "proj" / name, name, WIDTH, HEIGHT, seed=seed, mode="continuous")
                   for name, seed in (("meas-1", 3), ("meas-2", 11)))
    imzml_path, ibd_path, sha256 = mine[0]["path"], mine[1]["path"], mine[0]["sha256"]
    directory = cache.cache_dir(tmp_path / "data")
    wrong = cache.preview(imzml_path, other[1]["path"], sha256, directory)   # imzML 1 with the ibd of 2
    right = cache.preview(imzml_path, ibd_path, sha256, directory)
    assert np.array_equal(right.tic, imzml.compute(imzml_path, ibd_path).tic, equal_nan=True)
    assert not np.array_equal(right.tic, wrong.tic, equal_nan=True) and len(list(directory.iterdir())) == 2


def test_ion_images_are_cached_per_pair_checksums_and_query(image, tmp_path):
    _, imzml_path, ibd_path, sha256 = image
    directory = cache.cache_dir(tmp_path / "data")
    preview, paths = cache.preview(imzml_path, ibd_path, sha256, directory), (imzml_path, ibd_path)
    query, sums = images.window(700, da=1), (f"sha256:{sha256}", "md5sum:" + "0" * 32)
    first = cache.ion_image(preview, paths, sums, query, directory)
    entry = cache.ion_entry(directory, paths, sums, query)
    assert entry.exists() and np.array_equal(first, images.ion_image(preview, ibd_path, query), equal_nan=True)
    written = entry.stat().st_mtime_ns
    assert np.array_equal(cache.ion_image(preview, paths, sums, query, directory), first, equal_nan=True)
    assert entry.stat().st_mtime_ns == written  # read, not computed again
    others = {cache.ion_entry(directory, paths, (sums[0], "md5sum:" + "1" * 32), query),
              cache.ion_entry(directory, paths, sums, images.window(700, da=0.5)),
              cache.ion_entry(directory, paths, sums, images.window(700, ppm=1))}
    assert len(others | {entry}) == 4
    assert cache.recorded_checksum({"sha256": sha256, "md5sum": "0" * 32}) == f"sha256:{sha256}"
    assert cache.recorded_checksum({"sha256": "../x", "md5sum": "0" * 32}) == "md5sum:" + "0" * 32
    assert cache.recorded_checksum({}) == ""


@pytest.mark.parametrize("write", [lambda path: path.write_bytes(b"half an entry"),
                                   lambda path: np.savez(path.open("wb"), format=cache.FORMAT - 1)])
def test_a_damaged_or_outdated_entry_is_computed_again(image, tmp_path, write):
    _, imzml_path, ibd_path, sha256 = image
    directory = cache.cache_dir(tmp_path / "data")
    directory.mkdir(parents=True)
    write(cache.entry(directory, imzml_path, sha256, ibd_path))
    assert cache.load(cache.entry(directory, imzml_path, sha256, ibd_path)) is None
    assert cache.preview(imzml_path, ibd_path, sha256, directory).tic.shape == (HEIGHT, WIDTH)
    assert cache.load(cache.entry(directory, imzml_path, sha256, ibd_path)) is not None


# -- the cache's bound -------------------------------------------------------------------------

def _cached(image, tmp_path):
    """(directory, preview, paths, checksums) of the image's pair with its preview cached."""
    _, imzml_path, ibd_path, sha256 = image
    directory = cache.cache_dir(tmp_path / "data")
    return (directory, cache.preview(imzml_path, ibd_path, sha256, directory), (imzml_path, ibd_path),
            (f"sha256:{sha256}", ""))


def test_past_its_bound_the_least_recently_used_entries_go_and_the_newest_stays(image, tmp_path):
    directory, preview, paths, sums = _cached(image, tmp_path)
    windows = [images.window(700 + k, da=1) for k in range(6)]
    ions = [cache.ion_entry(directory, paths, sums, w) for w in windows]
    for k, window in enumerate(windows[:5]):   # written a minute apart, the preview before them
        cache.ion_image(preview, paths, sums, window, directory)
        os.utime(ions[k], ns=(time.time_ns() - (60 - k) * 60 * 10 ** 9,) * 2)
    entry = cache.entry(directory, paths[0], sums[0][7:], paths[1])
    os.utime(entry, ns=(time.time_ns() - 7200 * 10 ** 9,) * 2)
    cache.ion_image(preview, paths, sums, windows[0], directory)   # a read: the oldest ion image is used again
    bound = int(3.5 * ions[0].stat().st_size)
    cache.ion_image(preview, paths, sums, windows[5], directory, bound)
    assert sorted(directory.rglob("*.np*")) == sorted([ions[0], ions[4], ions[5]])   # the preview went first
    assert sum(f.stat().st_size for f in directory.rglob("*.np*")) <= bound
    again = cache.preview(*paths, sums[0][7:], directory, bound)   # computed again, and kept (the newest)
    assert np.array_equal(again.tic, preview.tic, equal_nan=True) and entry.exists()


def test_an_entry_pruned_while_read_is_read_whole(image, tmp_path):
    directory, preview, _, _ = _cached(image, tmp_path)
    (entry,) = directory.glob("*.npz")
    with np.load(entry, allow_pickle=False) as opened:   # open, nothing read yet (np.load reads lazily)
        assert cache.prune(directory, 1) == [entry] and not entry.exists()
        assert np.array_equal(opened["tic"], preview.tic, equal_nan=True)


READER = """
import sys
from pathlib import Path
import numpy as np
from ims import images
from portal.previews import cache
imzml, ibd, sha256, directory, expected, bound = sys.argv[1:]
paths, query, bound = (Path(imzml), Path(ibd)), images.window(700, da=1), int(bound)
wanted = np.load(expected)
for _ in range(60):
    preview = cache.preview(*paths, sha256, Path(directory), bound)
    assert np.array_equal(cache.ion_image(preview, paths, (f"sha256:{sha256}", ""), query, Path(directory), bound),
                          wanted, equal_nan=True)
"""


def test_a_reader_in_another_process_is_not_broken_by_pruning(image, tmp_path):
    directory, preview, paths, sums = _cached(image, tmp_path)
    expected = tmp_path / "expected.npy"
    np.save(expected, images.ion_image(preview, paths[1], images.window(700, da=1)))
    bound = 3 * expected.stat().st_size   # a few ion images: the reader's entries go again and again
    reader = subprocess.Popen([sys.executable, "-c", READER, *map(str, paths), sums[0][7:], str(directory),
                               str(expected), str(bound)], stderr=subprocess.PIPE, text=True)
    k = 0
    while reader.poll() is None:
        cache.ion_image(preview, paths, sums, images.window(710 + k % 50, da=1 + k // 50 % 2), directory, bound)
        k += 1
    assert reader.returncode == 0, reader.stderr.read()
    cache.ion_image(preview, paths, sums, images.window(800, da=1), directory, bound)
    assert k > 20 and sum(f.stat().st_size for f in directory.rglob("*.np*")) <= bound


# -- the figures -----------------------------------------------------------------------------

def test_the_tic_figure_is_a_heatmap_in_imzml_pixel_coordinates(image):
    _, imzml_path, ibd_path, _ = image
    preview = imzml.compute(imzml_path, ibd_path)
    heatmap = figures.tic_figure(preview).data[0]
    assert heatmap.type == "heatmap" and np.asarray(heatmap.z).shape == (HEIGHT, WIDTH)
    assert list(heatmap.x) == list(range(1, WIDTH + 1)) and list(heatmap.y) == list(range(1, HEIGHT + 1))
    assert figures.tic_figure(preview).layout.yaxis.autorange == "reversed"  # y = 1 at the top, as scanned
    outline = figures.tic_figure(preview, (4, 2)).layout.shapes[0]
    assert (outline.x0, outline.x1, outline.y0, outline.y1) == (3.5, 4.5, 1.5, 2.5)


def test_a_long_spectrum_is_thinned_but_keeps_its_peaks():
    mz = np.linspace(100, 1000, 100_001)
    intensity = np.ones_like(mz)
    intensity[[7, 50_000, 99_999]] = [50, 80, 30]
    thin_mz, thin = figures.thinned(mz, intensity)
    assert len(thin) <= figures.MAX_POINTS
    assert set(thin[thin > 1]) == {50, 80, 30} and mz[50_000] in thin_mz


def test_a_pixel_spectrum_names_its_pixel_and_processed_spectra_are_sticks():
    mz, intensity = np.array([400.0, 500.0]), np.array([3.0, 5.0])
    line = figures.pixel_figure(mz, intensity, 4, 2, sticks=False)
    assert line.layout.title.text == "Spectrum at pixel (4, 2)" and list(line.data[0].y) == [3.0, 5.0]
    sticks = figures.pixel_figure(mz, intensity, 4, 2, sticks=True).data[0]
    assert np.array_equal(sticks.x, [400, 400, np.nan, 500, 500, np.nan], equal_nan=True)
    assert np.array_equal(sticks.y, [0, 3, np.nan, 0, 5, np.nan], equal_nan=True)


def test_the_mean_spectrum_says_how_it_was_made(image):
    mode, imzml_path, ibd_path, _ = image
    title = figures.mean_spectrum_figure(imzml.compute(imzml_path, ibd_path)).layout.title.text
    assert f"{WIDTH * HEIGHT} pixels" in title and ("bins" in title) == (mode == "processed")


def test_a_file_of_a_run_made_before_files_followed_projects_is_refused_saying_why(root):
    (root / "runs" / "r-1" / "outputs").mkdir(parents=True)
    (root / "runs" / "r-1" / "outputs" / "qc.json").write_text("{}")
    with pytest.raises(NotReadable, match="a run made before runs were kept in their project's folder"):
        resolve((root / "runs" / "r-1" / "outputs" / "qc.json").as_uri(), root, "proj")


def test_an_ion_image_is_drawn_on_the_tic_raster_with_its_window_and_missing_pixels_in_grey(image):
    _, imzml_path, ibd_path, _ = image
    preview = imzml.compute(imzml_path, ibd_path)
    values = np.arange(WIDTH * HEIGHT, dtype=float).reshape(HEIGHT, WIDTH)
    values[0, 0] = np.nan
    query = images.window(760.585, ppm=5)
    figure = figures.ion_figure(preview, values, query)
    tic = figures.tic_figure(preview)
    assert list(figure.data[0].x) == list(tic.data[0].x) and list(figure.data[0].y) == list(tic.data[0].y)
    assert figure.layout.title.text == "Ion image: m/z 760.5850 ± 5 ppm<br><sup>m/z 760.5812–760.5888</sup>"
    assert figure.data[0].colorbar.title.text == "Intensity<br>(a.u.)"
    assert figure.layout.plot_bgcolor == figures.NO_SPECTRUM and "without a spectrum" in figure.layout.annotations[0].text
    assert not figures.ion_figure(preview, np.zeros((HEIGHT, WIDTH)), query).layout.annotations


def test_a_centroid_mean_spectrum_is_drawn_as_sticks(image):
    """Centroids joined by a line would draw signal across empty m/z (a continuous-mode centroid
    image shares one axis of centroids): sticks from 0 instead."""
    _, imzml_path, ibd_path, _ = image
    preview = imzml.compute(imzml_path, ibd_path)
    line = figures.mean_spectrum_figure(preview).data[0]
    sticks = figures.mean_spectrum_figure(preview, sticks=True).data[0]
    assert not np.isnan(np.asarray(line.y, dtype=float)).any()
    assert len(sticks.x) == 3 * len(line.x) and np.asarray(sticks.y, dtype=float)[::3].tolist() == [0] * len(line.x)


def test_the_mean_spectrum_marks_its_top_peaks(image):
    _, imzml_path, ibd_path, _ = image
    preview = imzml.compute(imzml_path, ibd_path)
    peaks = images.top_peaks(preview.mz, preview.mean)
    figure = figures.mean_spectrum_figure(preview, peaks)
    assert len(peaks) == images.PEAKS and list(figure.data[1].x) == [p[0] for p in peaks]
