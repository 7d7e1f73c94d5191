-- Call durations stored before the bounds of `switchboard_crds::call_bounds` (0..=86400 s)
-- are brought into them: one record of 2^63-1 seconds made every later sum overflow.
SELECT set_config('app.system', 'on', true);
UPDATE calls SET duration_seconds = 86400 WHERE duration_seconds > 86400;
UPDATE calls SET duration_seconds = 0 WHERE duration_seconds < 0;
