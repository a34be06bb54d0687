-- A course's sample data: run once by the postgresql role (as the course database's owner).
CREATE TABLE modules (code text PRIMARY KEY, title text NOT NULL, credits integer NOT NULL);
INSERT INTO modules VALUES
  ('TM351', 'Data management and analysis', 30),
  ('TM129', 'Technologies in practice', 30),
  ('M269', 'Algorithms, data structures and computability', 30);
