-- The audit trail cannot be changed through SQL by mistake: reaper_events refuses UPDATE and DELETE.
-- (SQLite has no roles: whoever can write the file can drop these triggers, or the file. They stop a
-- tool or a hand-written statement from rewriting history, not a determined owner of the file; for that,
-- use PostgreSQL with the README's two roles.) tipreaper itself only ever inserts events.

-- +goose Up

-- +goose StatementBegin
CREATE TRIGGER reaper_events_no_update BEFORE UPDATE ON reaper_events
BEGIN
    SELECT RAISE(ABORT, 'reaper_events is append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER reaper_events_no_delete BEFORE DELETE ON reaper_events
BEGIN
    SELECT RAISE(ABORT, 'reaper_events is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- +goose Down

DROP TRIGGER reaper_events_no_delete;
DROP TRIGGER reaper_events_no_update;
