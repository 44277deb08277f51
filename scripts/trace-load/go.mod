module load

go 1.15
