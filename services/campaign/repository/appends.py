"""The statements that append creators to a list: a read that finds what is listed already,
the profiles' upsert, and the locked append. ``ListRepository.add_items`` runs them."""

import sqlalchemy as sa

from shared.db import DriverQuery

# Profiles are inserted in (platform, external_id) order so two requests adding overlapping
# creators take the unique-index locks in the same order and cannot deadlock. Existing profiles
# are left as they are (first snapshot wins), which keeps follower_sum arithmetic exact.
# ``metadata.enrichment`` is written only from scraping's enriched profiles, never by a client.
_INSERT_PROFILES_SQL = sa.text("""
INSERT INTO creator_profiles
    (platform, external_id, handle, display_name, avatar_url, url, followers,
     engagement_rate, category, metadata)
SELECT platform, external_id, handle, display_name, avatar_url, url, followers,
       engagement_rate, category, coalesce(metadata, '{}'::jsonb) - 'enrichment'
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
    platform text, external_id text, handle text, display_name text, avatar_url text,
    url text, followers bigint, engagement_rate numeric, category text, metadata jsonb)
ORDER BY platform, external_id
ON CONFLICT (platform, external_id) DO NOTHING
""")

# One statement: resolve creator ids, append new items after the list's last position, and
# bump the stats by exactly what was inserted (the list's row is not rewritten when nothing
# was, so its ``updated_at`` and its place in the lists page stay). The caller holds the list's row lock, so no
# concurrent add can interleave positions; ON CONFLICT stays as the constraint's last word.
_ADD_ITEMS_SQL = sa.text("""
WITH input AS (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
        ord int, platform text, external_id text, bucket text, notes text, pinned boolean,
        metrics_snapshot jsonb, custom_fields jsonb)
), fresh AS (
    SELECT p.id AS creator_id, i.*
    FROM input i
    JOIN creator_profiles p ON p.platform = i.platform AND p.external_id = i.external_id
    WHERE NOT EXISTS (
        SELECT 1 FROM list_items li WHERE li.list_id = :list_id AND li.creator_id = p.id)
      AND EXISTS (SELECT 1 FROM creator_lists WHERE id = :list_id AND user_id = :user_id)
), top AS (
    SELECT coalesce(max(position), -1) AS position FROM list_items WHERE list_id = :list_id
), inserted AS (
    INSERT INTO list_items
        (list_id, creator_id, position, bucket, notes, pinned, metrics_snapshot,
         custom_fields, added_by)
    SELECT :list_id, f.creator_id, top.position + row_number() OVER (ORDER BY f.ord),
           f.bucket, f.notes, f.pinned, coalesce(f.metrics_snapshot, '{}'::jsonb),
           coalesce(f.custom_fields, '{}'::jsonb), :user_id
    FROM fresh f CROSS JOIN top
    ON CONFLICT (list_id, creator_id) DO NOTHING
    RETURNING creator_id
), stats AS (
    UPDATE creator_lists SET
        creator_count = creator_count + (SELECT count(*) FROM inserted),
        follower_sum = follower_sum + (
            SELECT coalesce(sum(p.followers), 0)
            FROM inserted JOIN creator_profiles p ON p.id = inserted.creator_id)
    WHERE id = :list_id AND user_id = :user_id AND EXISTS (SELECT 1 FROM inserted)
    RETURNING creator_count
)
SELECT (SELECT count(*) FROM inserted) AS added, (SELECT creator_count FROM stats) AS total
""")

# Before any write: whether the list is the caller's, and how many of the creators it holds
# already. An add whose creators are all listed writes nothing and takes no lock, so repeated
# adds of the same creators (a retried request, a second click) never queue on the list.
_LISTED_SQL = sa.text("""
SELECT EXISTS (SELECT 1 FROM creator_lists WHERE id = :list_id AND user_id = :user_id),
       (SELECT count(*)
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(platform text, external_id text)
        JOIN creator_profiles p ON p.platform = r.platform AND p.external_id = r.external_id
        JOIN list_items li ON li.list_id = :list_id AND li.creator_id = p.id)
""")

INSERT_PROFILES = DriverQuery(_INSERT_PROFILES_SQL)
ADD_ITEMS = DriverQuery(_ADD_ITEMS_SQL)
LISTED = DriverQuery(_LISTED_SQL)
