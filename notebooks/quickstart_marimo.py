"""The quickstart as a marimo notebook: ``marimo edit notebooks/quickstart_marimo.py`` (or ``marimo run``)."""

import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo

    mo.md(
        """
        # emowidgets quickstart (marimo)

        Live face-emotion recognition from your webcam. The browser sends JPEG frames to this notebook's
        Python process, which detects faces and classifies their emotion; boxes and labels are drawn over the
        preview and the gauge shows the scores. No image is stored in the notebook.

        Allow camera access when the browser asks.
        """
    )
    return


@app.cell
def _():
    import emowidgets

    view = emowidgets.live()  # camera + face boxes + emotion gauge
    view
    return (view,)


@app.cell
def _(mo):
    mo.md("Stop the camera and the worker thread with `view.close()`.")
    return


if __name__ == "__main__":
    app.run()
