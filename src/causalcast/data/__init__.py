"""Market data: loading, validation and a synthetic market whose predictability is known."""
