"""Every table of ``domainsmith.db``, as sqlite-utils migrations; ``store.database.open_db`` applies them.

Three migration sets, each recorded under its own name in ``_sqlite_migrations`` (the names
and the functions' names are on-disk format: never rename them, add new migrations instead):

- ``domainsmith``: knowledge, the source of truth: documents, chunks (with their anchors),
  their embeddings (float32 bytes) and an FTS5 index over chunk text kept in step by triggers.
  Chunk row ids come from AUTOINCREMENT, so a removed chunk's id is never reused: they are the
  labels of the hnswlib index.
- ``domainsmith-models``: the models registry (``store.registry``).
- ``domainsmith-sessions``: saved chat sessions (``store.sessions``).
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

knowledge_migrations = Migrations("domainsmith")
models_migrations = Migrations("domainsmith-models")
sessions_migrations = Migrations("domainsmith-sessions")


@knowledge_migrations()
def create_knowledge_tables(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE knowledge_bases (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            embedder TEXT NOT NULL,
            dim INTEGER NOT NULL,
            chunk_tokens INTEGER NOT NULL,
            chunk_overlap INTEGER NOT NULL,
            generation INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE documents (
            id TEXT PRIMARY KEY,
            kb_id INTEGER NOT NULL REFERENCES knowledge_bases(id),
            origin TEXT NOT NULL,
            source TEXT NOT NULL,
            name TEXT NOT NULL,
            title TEXT NOT NULL,
            kind TEXT NOT NULL,
            pages INTEGER,
            size_bytes INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            chunk_count INTEGER NOT NULL,
            text TEXT NOT NULL,
            added_at TEXT NOT NULL,
            UNIQUE (kb_id, origin)
        )"""
    )
    db.execute("CREATE INDEX documents_hash ON documents (kb_id, content_hash)")
    db.execute(
        """
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chunk_id TEXT NOT NULL UNIQUE,
            kb_id INTEGER NOT NULL REFERENCES knowledge_bases(id),
            doc_id TEXT NOT NULL REFERENCES documents(id),
            idx INTEGER NOT NULL,
            text TEXT NOT NULL,
            context TEXT NOT NULL,
            page INTEGER,
            section TEXT NOT NULL,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL
        )"""
    )
    db.execute("CREATE INDEX chunks_doc ON chunks (doc_id)")
    db.execute("CREATE INDEX chunks_kb ON chunks (kb_id)")
    db.execute(
        """
        CREATE TABLE embeddings (
            chunk INTEGER PRIMARY KEY REFERENCES chunks(id),
            kb_id INTEGER NOT NULL,
            vector BLOB NOT NULL,
            content_hash TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX embeddings_kb ON embeddings (kb_id)")
    db["chunks"].enable_fts(["text", "context"], fts_version="FTS5", create_triggers=True, tokenize="porter")


@knowledge_migrations()
def add_chunk_page_labels(db: Database) -> None:
    """The page label a reader's viewer shows (PDF page labels: "xii", "24"); NULL when the document
    has none, and for chunks stored before labels were read (they show the physical page)."""
    db.execute("ALTER TABLE chunks ADD COLUMN page_label TEXT")


@knowledge_migrations()
def add_chunk_ocr(db: Database) -> None:
    """1 when the chunk's text was read by OCR from a scanned page (a citation says so)."""
    db.execute("ALTER TABLE chunks ADD COLUMN ocr INTEGER NOT NULL DEFAULT 0")


@models_migrations()
def create_models_table(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE models (
            name TEXT PRIMARY KEY,
            base TEXT NOT NULL,
            run_id TEXT NOT NULL,
            data_hash TEXT NOT NULL,
            hyperparameters TEXT NOT NULL,
            metrics TEXT NOT NULL,
            file TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            quant TEXT NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )


@models_migrations()
def add_model_lineage(db: Database) -> None:
    """The run's training-data lineage (``store.lineage``) as JSON; NULL for models exported before it."""
    db.execute("ALTER TABLE models ADD COLUMN lineage TEXT")


@sessions_migrations()
def create_session_tables(db: Database) -> None:
    db.execute("""CREATE TABLE chat_sessions (
        id TEXT PRIMARY KEY, title TEXT NOT NULL, kb TEXT, model TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE chat_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES chat_sessions(id) ON DELETE CASCADE,
        role TEXT NOT NULL, content TEXT NOT NULL, abstained INTEGER NOT NULL DEFAULT 0,
        citations TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL)""")
    db.execute("CREATE INDEX chat_messages_session ON chat_messages (session_id, id)")


# In the order open_db applies them (the order they were introduced).
MIGRATIONS = (knowledge_migrations, models_migrations, sessions_migrations)
