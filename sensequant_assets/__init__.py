"""SenseQuant: NSE market data, teacher/student models and reviewed promotions on Dagster."""
