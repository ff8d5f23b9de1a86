# One image for every twopc role; the compose file picks the role by command.
FROM node:20-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY coordinator ./coordinator
COPY participant ./participant
COPY shared ./shared
COPY wal ./wal
COPY scenarios ./scenarios
ENV NODE_ENV=production
ENTRYPOINT ["node", "--import", "tsx", "bin/twopc.ts"]
