"""Renders across a Ray cluster: `bark-tui render SCRIPT --ray [ADDRESS]`.

`connect` finds or starts Ray (an optional extra), `worker` is the actor that owns
one `Engine` and makes batches of segments, `manifest` is the render's plan as data
beside its parts, and `driver` schedules segments over the workers, keeps every
finished part as it arrives and stitches the whole as a local render does.
Nothing here is imported by the core install or the studio's start-up.
"""
