require '../cyc'
