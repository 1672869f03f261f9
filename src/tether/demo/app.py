"""The gradio page around a ``DemoService``: a text box, a submit button, the answer, and
(with a corpus) a map of it. The only module that imports gradio."""

from __future__ import annotations

from typing import Any

from tether.demo.service import DemoService
from tether.errors import require_extra

HOST = "127.0.0.1"


def build_app(
    service: DemoService, *, title: str | None = None, map_image: str | None = None
) -> Any:
    """A gradio Blocks app for ``service``; serve it with ``launch``."""
    require_extra("gradio", "demo")
    import gradio as gr

    title = title or f"tether demo: {service.model_id}"
    hint = {
        "embed": "Type a text to embed"
        + (" and find its nearest neighbours in the corpus." if service.corpus else "."),
        "classify": "Type a text to classify.",
        "fill-mask": f"Type a text with {service.mask_token} where a word is missing.",
    }[service.task]
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"## {title}\n{hint} Task: `{service.task}`.")
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="text", lines=3, elem_id="tether-input")
                submit = gr.Button("Submit", variant="primary", elem_id="tether-submit")
            with gr.Column():
                answer = gr.Markdown(elem_id="tether-output")
        if map_image:
            gr.Image(map_image, label="corpus map", interactive=False, elem_id="tether-map")
        submit.click(service.respond, inputs=text, outputs=answer, api_name="respond")
        text.submit(service.respond, inputs=text, outputs=answer)
    return app


def theme() -> Any:
    """gradio's default look with system fonts: the page fetches nothing from the network
    (the default theme would load web fonts)."""
    import gradio as gr

    return gr.themes.Default(font=["sans-serif"], font_mono=["monospace"])


def launch(app: Any, *, port: int | None = None) -> str:
    """Start serving ``app`` on 127.0.0.1 (never on all interfaces) in the background;
    returns its URL. ``app.block_thread()`` then serves until interrupted."""
    app.launch(
        server_name=HOST,
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        share=False,
        show_error=True,
        theme=theme(),
    )
    return f"http://{HOST}:{app.server_port}/"
