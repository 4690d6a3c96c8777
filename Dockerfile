# WI's platform image, as compose.yaml runs it.
FROM python:3.11-slim
WORKDIR /opt/wi
COPY pyproject.toml README.md ./
COPY wi ./wi
COPY sdk ./sdk
COPY services ./services
RUN pip install --no-cache-dir '.[platform]'
EXPOSE 8080
CMD ["wi", "up"]
