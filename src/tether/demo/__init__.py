"""``tether demo``: a small web app for one model or bundle (gradio, the ``demo`` extra).

``service`` holds what the app shows, with no gradio in it; ``app`` wraps it in a
gradio page; ``space`` writes a folder that runs the same app as a Hugging Face Space.
gradio is imported only in ``app``.
"""
