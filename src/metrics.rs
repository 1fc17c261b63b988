//! Prometheus counters by outcome and reason, and the admin (`/metrics`, `/healthz`) service.
