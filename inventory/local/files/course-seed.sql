-- The local course's seed (role postgresql, postgresql_seed_file): loaded once into the course database, as its
-- owner, on the first configure of a VM (a golden image carries it to every VM made from it).
CREATE TABLE planets (
    name text PRIMARY KEY,
    moons integer NOT NULL,
    mean_radius_km numeric(8, 1) NOT NULL
);

INSERT INTO planets (name, moons, mean_radius_km) VALUES
    ('Mercury', 0, 2439.7),
    ('Venus', 0, 6051.8),
    ('Earth', 1, 6371.0),
    ('Mars', 2, 3389.5);
