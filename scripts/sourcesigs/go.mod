module sourcesigs

go 1.18
