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
    # The log split into forecasts and answers (`registry.prediction_rows`): a cached answer is
    # the same forecast served again, and the log must keep up with thousands of them a second
    # at almost no cost to the requests (issue 15), so an answer is one short row and its
    # forecast (horizons as one JSON array) is written once. Outcomes belong to (forecast,
    # horizon). Indexes: forecasts by version (what monitoring reads) and answers by forecast
    # (the join); retention deletes by request time with a scan, which it runs rarely. Each old
    # row becomes a one-horizon forecast with one answer, both under its old id, with its
    # outcome.
    (4, "prediction log: forecasts and the answers that served them", [
        """CREATE TABLE served_forecasts (
            forecast_id INTEGER PRIMARY KEY,
            version_id INTEGER NOT NULL REFERENCES model_versions(version_id),
            symbol TEXT NOT NULL,
            as_of TEXT NOT NULL,
            last_close REAL NOT NULL CHECK (last_close > 0),
            df REAL,
            horizons_json TEXT NOT NULL,
            n_horizons INTEGER NOT NULL CHECK (n_horizons >= 1))""",
        "CREATE INDEX forecasts_by_version ON served_forecasts(version_id)",
        """CREATE TABLE served_answers (
            answer_id INTEGER PRIMARY KEY,
            forecast_id INTEGER NOT NULL REFERENCES served_forecasts(forecast_id)
                ON DELETE CASCADE,
            requested_at TEXT NOT NULL,
            cached INTEGER NOT NULL CHECK (cached IN (0, 1)),
            source TEXT NOT NULL,
            monitor_status TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX answers_by_forecast ON served_answers(forecast_id)",
        """CREATE TABLE forecast_outcomes (
            forecast_id INTEGER NOT NULL REFERENCES served_forecasts(forecast_id)
                ON DELETE CASCADE,
            horizon INTEGER NOT NULL CHECK (horizon >= 1),
            realised REAL NOT NULL,
            outcome_as_of TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (forecast_id, horizon)) WITHOUT ROWID""",
        """INSERT INTO served_forecasts SELECT prediction_id, version_id, symbol, as_of,
            last_close, df, json_array(json_object('forecast', json(forecast_json), 'horizon',
            horizon, 'mean', mean, 'scale', scale)), 1 FROM predictions""",
        """INSERT INTO served_answers SELECT prediction_id, prediction_id, requested_at, cached,
            source, monitor_status FROM predictions""",
        """INSERT INTO forecast_outcomes SELECT o.prediction_id, p.horizon, o.realised,
            o.outcome_as_of, o.recorded_at FROM prediction_outcomes o JOIN predictions p
            USING (prediction_id)""",
        "DROP TABLE prediction_outcomes",
        "DROP TABLE predictions",
    ]),
]

LATEST = MIGRATIONS[-1][0]
