"""Looking inside an RNN: gradient flow through time, gate activations, token attributions.

    from recur.diagnostics import gradient_flow, record_gates, integrated_gradients
    flow = gradient_flow(model, inputs, loss_fn)     # ‖∂L/∂h_t‖ and ‖∂h_t/∂h_{t-1}‖ per step
    rec = record_gates(model, inputs)                # every gate and state, (B, T, H) each
    attr = integrated_gradients(classifier, tokens)  # per-token evidence for the decision

See docs/long-dependencies.md and docs/inspect.md; ``recur inspect DIR --text ...``.
"""

from recur.diagnostics.attributions import (
    Attribution,
    integrated_gradients,
    occlusion,
    plot_attributions,
)
from recur.diagnostics.gates import GateRecording, plot_gates, record_gates
from recur.diagnostics.gradient_flow import (
    GradientFlow,
    find_recurrent,
    gradient_flow,
    plot_gradient_flow,
    state_jacobians,
)

__all__ = [
    "Attribution", "GateRecording", "GradientFlow", "find_recurrent", "gradient_flow",
    "integrated_gradients", "occlusion", "plot_attributions", "plot_gates",
    "plot_gradient_flow", "record_gates", "state_jacobians",
]
