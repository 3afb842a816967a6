"""Options analytics on real chains: chains, parity forwards, implied volatility (European and
American), SVI surfaces with arbitrage checks, risk-neutral densities and multi-leg strategies.

One job per module: `chain` (schema, import, validation), `parity` (forward and dividend yield
per expiry), `iv` (implied volatility), `svi` (the surface), `density` (Breeden–Litzenberger),
`legs` (strategy syntax and presets), `distributions` (terminal-price laws), `strategy`
(evaluation), `units` (Greek conventions and JSON-safe numbers).
"""
