"""bulkshare: bulk administration of Qlik Cloud sharing tasks."""
