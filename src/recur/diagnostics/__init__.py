"""Looking inside an RNN: gradient flow through time (more to come: gates, attributions).

    from recur.diagnostics import gradient_flow, plot_gradient_flow
    flow = gradient_flow(model, inputs, loss_fn)     # ‖∂L/∂h_t‖ and ‖∂h_t/∂h_{t-1}‖ per step

See docs/long-dependencies.md.
"""

from recur.diagnostics.gradient_flow import (
    GradientFlow,
    find_recurrent,
    gradient_flow,
    plot_gradient_flow,
    state_jacobians,
)

__all__ = ["GradientFlow", "find_recurrent", "gradient_flow", "plot_gradient_flow", "state_jacobians"]
