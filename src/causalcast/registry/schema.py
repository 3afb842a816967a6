"""SQLite schema as numbered migrations.

A registry records which migrations it has applied in ``schema_migrations``; opening it applies
the missing ones in one transaction, and refuses a registry written by a newer causalcast rather
than guessing. To change the schema, append a migration; never edit an applied one.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "runs, jobs, epoch metrics, versions, stages", [
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
            config_json TEXT NOT NULL DEFAULT '{}',
            audit_json TEXT,
            code_version_json TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            finished_at TEXT)""",
        """CREATE TABLE jobs (
            job_id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            symbol TEXT NOT NULL,
            model TEXT NOT NULL,
            fold INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            worker TEXT,
            error TEXT,
            traceback TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            seconds REAL,
            version_id INTEGER REFERENCES model_versions(version_id),
            UNIQUE (run_id, symbol, model, fold))""",
        "CREATE INDEX jobs_by_run_status ON jobs(run_id, status)",
        """CREATE TABLE epoch_metrics (
            job_id INTEGER NOT NULL REFERENCES jobs(job_id),
            epoch INTEGER NOT NULL,
            metrics_json TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (job_id, epoch))""",
        """CREATE TABLE model_versions (
            version_id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            artifact_sha256 TEXT NOT NULL CHECK (length(artifact_sha256) = 64),
            artifact_size INTEGER NOT NULL,
            config_json TEXT NOT NULL,
            metrics_json TEXT NOT NULL,
            data_fingerprint TEXT NOT NULL,
            feature_config_json TEXT NOT NULL,
            split_config_json TEXT NOT NULL,
            code_version_json TEXT NOT NULL,
            lineage_json TEXT NOT NULL,
            run_id TEXT REFERENCES runs(run_id),
            job_id INTEGER REFERENCES jobs(job_id),
            created_at TEXT NOT NULL,
            UNIQUE (name, version))""",
        "CREATE INDEX versions_by_artifact ON model_versions(artifact_sha256)",
        "CREATE INDEX versions_by_run ON model_versions(run_id)",
        """CREATE TABLE version_stages (
            version_id INTEGER PRIMARY KEY REFERENCES model_versions(version_id),
            name TEXT NOT NULL,
            stage TEXT NOT NULL CHECK (stage IN ('candidate', 'production', 'archived')),
            updated_at TEXT NOT NULL)""",
        # The database itself refuses a second production version of one name.
        """CREATE UNIQUE INDEX one_production_per_name ON version_stages(name)
            WHERE stage = 'production'""",
        """CREATE TABLE stage_history (
            event_id INTEGER PRIMARY KEY,
            version_id INTEGER NOT NULL REFERENCES model_versions(version_id),
            name TEXT NOT NULL,
            from_stage TEXT,
            to_stage TEXT NOT NULL,
            action TEXT NOT NULL
                CHECK (action IN ('register', 'promote', 'stage', 'replaced', 'rollback')),
            by TEXT NOT NULL,
            at TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            gates_json TEXT NOT NULL DEFAULT '[]',
            replaced_version_id INTEGER REFERENCES model_versions(version_id))""",
        "CREATE INDEX history_by_name ON stage_history(name, event_id)",
    ]),
    # An evaluation (walk-forward metrics, significance, baseline comparison, grade) attached
    # to an existing, immutable version, so nothing is registered twice to carry its scores.
    # Append-only: a re-evaluation adds a row; the latest one is the version's evaluation.
    (2, "evaluations attached to versions", [
        """CREATE TABLE version_evaluations (
            evaluation_id INTEGER PRIMARY KEY,
            version_id INTEGER NOT NULL REFERENCES model_versions(version_id),
            evaluation_json TEXT NOT NULL,
            created_at TEXT NOT NULL,
            by TEXT NOT NULL)""",
        "CREATE INDEX evaluations_by_version ON version_evaluations(version_id, evaluation_id)",
    ]),
    # The prediction log (causalcast.monitoring): every forecast a version answered, one row
    # per horizon, with its full distribution; its realised outcome is added when the bars
    # arrive (one outcome row per prediction, written once). Scores are never stored: they are
    # recomputed from (forecast, outcome) by the evaluation package, so there is one scorer.
    (3, "prediction log and outcomes", [
        """CREATE TABLE predictions (
            prediction_id INTEGER PRIMARY KEY,
            version_id INTEGER NOT NULL REFERENCES model_versions(version_id),
            symbol TEXT NOT NULL,
            as_of TEXT NOT NULL,
            horizon INTEGER NOT NULL CHECK (horizon >= 1),
            last_close REAL NOT NULL CHECK (last_close > 0),
            mean REAL NOT NULL,
            scale REAL NOT NULL CHECK (scale > 0),
            df REAL,
            forecast_json TEXT NOT NULL,
            requested_at TEXT NOT NULL,
            cached INTEGER NOT NULL CHECK (cached IN (0, 1)),
            source TEXT NOT NULL,
            monitor_status TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX predictions_by_version ON predictions(version_id, horizon, as_of)",
        "CREATE INDEX predictions_by_time ON predictions(requested_at)",
        """CREATE TABLE prediction_outcomes (
            prediction_id INTEGER PRIMARY KEY REFERENCES predictions(prediction_id)
                ON DELETE CASCADE,
            realised REAL NOT NULL,
            outcome_as_of TEXT NOT NULL,
            recorded_at TEXT NOT NULL)""",
    ]),
]

LATEST = MIGRATIONS[-1][0]
