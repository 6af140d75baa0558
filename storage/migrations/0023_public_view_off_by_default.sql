-- A project's public view (its name, description and journal, read by anyone without login) is
-- off until a teacher admin of the project turns it on: on a platform for children, a pupil's
-- comment must not reach the open internet before an adult chose that it may (0007 made it on
-- by default). Projects made before this migration keep the setting they have; an operator turns
-- every one off with `twinhub admin public-view --all` (docs/deployment.md).
ALTER TABLE spaces ALTER COLUMN public SET DEFAULT false;
