-- Records about a pupil joining, changing role or leaving belong to the pupils' corner's area from
-- now on (storage/activity.member_record_area): a visitor's feed never names a pupil. The records
-- written before are moved there too, or the history would still show them.
UPDATE activities a SET area = 'pupils_corner'
FROM users u
WHERE a.kind IN ('member.joined', 'member.role_changed', 'member.removed') AND a.area IS NULL
  AND u.id = a.user_id AND u.kind = 'pupil';
