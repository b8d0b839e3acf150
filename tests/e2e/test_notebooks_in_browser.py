"""The tutorial notebooks as a learner uses them: Run All, then the widgets, in quick mode.

Each test opens a notebook from a temporary copy of notebooks/ in JupyterLab, presses
Run > Run All Cells, fails with the first cell error if any, then uses the widgets a learner
would touch. The screenshot of each notebook at the end is saved by the ``open_notebook``
fixture; the folder is printed at the end of the run.
"""

from __future__ import annotations

import numpy as np
from lab_page import output_picture, shown_picture, wait_for_new_src, wait_for_text
from PIL import Image

T_LABEL = r"\bt = (\d+)"


def magenta_fraction(picture: Image.Image) -> float:
    """Share of pixels that are clearly magenta (high red and blue, low green)."""
    rgb = np.asarray(picture.convert("RGB")).astype(int)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # Pure magenta is (255, 0, 255); the margins leave room for resampling and antialiasing.
    return float(((red > 180) & (green < 90) & (blue > 180)).mean())


def slider_range(handle) -> tuple[int, int, int]:  # noqa: ANN001 - Playwright Locator
    """(min, value, max) of an ipywidgets slider, read from its handle's ARIA attributes."""
    return tuple(
        int(float(handle.get_attribute(f"aria-value{name}"))) for name in ("min", "now", "max")
    )


def test_01_upload_your_own_picture(open_notebook, tmp_path):
    nb = open_notebook("notebooks/01_your_image.ipynb")
    nb.run_all()
    pick = nb.cell_index("choose_my_image(")
    output = nb.cell(pick).locator(".jp-OutputArea")
    figure = output_picture(output)
    # Before any upload the bundled picture is used; the sample pictures have no magenta
    # (measured: 0.0 of their pixels), so the magenta check below can tell them apart.
    assert "e2e_magenta" not in output.inner_text()
    assert magenta_fraction(shown_picture(figure)) < 0.01

    upload_cell = nb.cell(nb.cell_index("upload_widget("))
    button = upload_cell.locator(".widget-upload")
    assert "Upload" in button.inner_text()
    picture = tmp_path / "e2e_magenta.png"
    Image.new("RGB", (300, 200), (255, 0, 255)).save(picture)
    nb.upload(button, picture)
    wait_for_text(button, r"\(1\)")  # the widget counts the uploaded file

    nb.run_cell(pick)
    text = output.inner_text()
    assert "e2e_magenta.png" in text and "300x200" in text, text
    # The figure is the picture plus a title and white margins; a square crop of the magenta
    # picture fills well over a fifth of it.
    share = magenta_fraction(shown_picture(output_picture(output)))
    assert share > 0.2, f"only {share:.1%} of the shown figure is magenta"


def test_02_forward_slider_and_play(open_notebook):
    nb = open_notebook("notebooks/02_forward_noising.ipynb")
    nb.run_all()
    explorer = nb.cell(nb.cell_index("forward_slider(")).locator(".widget-vbox:has(.widget-play)")
    explorer = explorer.first  # the outermost box: its inner boxes hold no Play
    handle = explorer.locator(".widget-slider .noUi-handle")
    label = explorer.locator(".widget-html-content").filter(has_text="t = ")
    image = explorer.locator("img.widget-image").first
    assert explorer.locator("img.widget-image").count() == 2
    t_min, t_now, t_max = slider_range(handle)
    assert int(wait_for_text(label, T_LABEL).group(1)) == t_now
    src = image.get_attribute("src")
    before = shown_picture(image)

    handle.focus()
    handle.press("End")  # keyboard on the slider, as a learner without a mouse would
    wait_for_text(label, rf"\bt = {t_max}\b")
    src = wait_for_new_src(image, src)
    after = shown_picture(image)
    # t = T-1 is almost pure noise (sqrt(abar) < 0.01) and t = 0 the picture: on a 0-255
    # scale the mean pixel change is tens of levels; an unchanged picture gives 0.
    change = np.abs(np.asarray(after, dtype=float) - np.asarray(before, dtype=float)).mean()
    assert change > 10, f"the picture barely changed (mean {change:.1f} levels)"

    handle.press("Home")
    wait_for_text(label, rf"\bt = {t_min}\b")
    wait_for_new_src(image, src)

    explorer.locator(".widget-play button:has(i.fa-play)").click()
    nb.page.wait_for_function(  # Play moves the slider; the kernel rewrites the label
        "([el, pattern, t0]) => { const m = el.textContent.match(new RegExp(pattern));"
        " return m && Number(m[1]) > t0; }",
        arg=[label.element_handle(), T_LABEL, t_min],
    )
    explorer.locator(".widget-play button:has(i.fa-pause)").click()
    assert slider_range(handle)[1] > t_min


def test_04_animation_and_reverse_explorer(open_notebook):
    nb = open_notebook("notebooks/04_reverse_sampling.ipynb")
    nb.run_all()

    animation = nb.cell(nb.cell_index("animation_html(")).locator("div.animation")
    frame = animation.locator("img")
    position = animation.locator("input.anim-slider")
    animation.scroll_into_view_if_needed()
    # matplotlib's script sets the first frame and the slider's range once it has run.
    wait_for_new_src(frame, "")
    assert frame.get_attribute("src").startswith("data:image/")
    frames = int(position.get_attribute("max")) + 1
    assert frames >= 2, "the animation has a single frame"
    animation.locator("button[title='First frame']").click()
    first = frame.get_attribute("src")
    animation.locator("button[title='Last frame']").click()
    wait_for_new_src(frame, first)
    assert position.input_value() == str(frames - 1)

    explorer = nb.cell(nb.cell_index("reverse_explorer(")).locator(".widget-vbox:has(.widget-play)")
    explorer = explorer.first
    images = explorer.locator("img.widget-image")
    assert images.count() == 2
    for index in range(2):
        wait_for_new_src(images.nth(index), "")  # rendered: a loaded, non-empty picture
    handle = explorer.locator(".widget-slider .noUi-handle")
    src = images.first.get_attribute("src")
    handle.focus()
    handle.press("End")
    wait_for_new_src(images.first, src)
