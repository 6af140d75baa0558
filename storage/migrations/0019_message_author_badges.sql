-- Authors carry the badge of their role (issue 21, rule 4): a pupil tells a teacher from a visitor,
-- or from another pupil who took a teacher's name, wherever a message appears. The badge is the
-- author's role in the project when they wrote (policy.badge: teacher, pupil, visitor, moderator,
-- bot), stored with the message so that replays and pages need no join. Messages written before
-- this take it from the account and the membership they have now (a pupil account is a pupil's
-- for ever; a former member's adult messages get none).
ALTER TABLE messages ADD COLUMN author_role text
    CHECK (author_role IN ('teacher', 'pupil', 'visitor', 'moderator', 'bot'));

UPDATE messages m SET author_role = CASE
        WHEN u.platform_role IN ('bot', 'moderator') THEN u.platform_role
        WHEN u.kind = 'pupil' THEN 'pupil'
        ELSE (SELECT CASE WHEN mb.role IN ('teacher_admin', 'teacher_member') THEN 'teacher'
                          WHEN mb.role = 'visitor' THEN 'visitor' END
              FROM members mb WHERE mb.space_id = m.space_id AND mb.user_id = m.author_id)
    END
FROM users u
WHERE u.id = m.author_id;
