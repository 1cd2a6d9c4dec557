"""Report metadata (API-ISS-033): everything the frontend needs to build its report form."""
