-- The audit trail cannot be quietly rewritten: reaper_events refuses UPDATE, DELETE and TRUNCATE, whoever
-- asks. Only the table's owner (the role that runs `reaper migrate`) can drop or disable these triggers;
-- the runtime role of the README's least-privilege setup has INSERT and SELECT on the table and nothing
-- else. tipreaper itself only ever inserts events.

-- +goose Up

-- +goose StatementBegin
CREATE FUNCTION reaper_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'reaper_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'the audit trail is never changed; the table owner would have to drop trigger reaper_events_append_only first';
END;
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION reaper_events_append_only() IS 'Refuses any change to reaper_events but INSERT (the audit trail is append-only).';

CREATE TRIGGER reaper_events_append_only
    BEFORE UPDATE OR DELETE ON reaper_events
    FOR EACH STATEMENT EXECUTE FUNCTION reaper_events_append_only();
COMMENT ON TRIGGER reaper_events_append_only ON reaper_events IS 'UPDATE and DELETE are refused, even when no row matches.';

CREATE TRIGGER reaper_events_no_truncate
    BEFORE TRUNCATE ON reaper_events
    FOR EACH STATEMENT EXECUTE FUNCTION reaper_events_append_only();
COMMENT ON TRIGGER reaper_events_no_truncate ON reaper_events IS 'TRUNCATE is refused.';

-- +goose Down

DROP TRIGGER reaper_events_no_truncate ON reaper_events;
DROP TRIGGER reaper_events_append_only ON reaper_events;
DROP FUNCTION reaper_events_append_only();
