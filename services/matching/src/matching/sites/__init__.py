"""Sites of the service consortium (助联体 阵地): district centres, township stations, village points."""
