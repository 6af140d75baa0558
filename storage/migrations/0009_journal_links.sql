-- A journal entry may carry a few links (to the class's work elsewhere).
ALTER TABLE messages ADD COLUMN links text[];
